#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "http/parser.h"

namespace l7px::http::testing {

// One parsed message as seen through the Parser API, in a comparable form.
struct ParsedMessage {
  std::string head;  // Describe(head()) at kHeadDone
  std::string body;  // raw body bytes (the decoded payload in decode mode)
  bool done = false;
  bool operator==(const ParsedMessage&) const = default;
};

struct ParseRun {
  std::vector<ParsedMessage> messages;
  ParseError error = ParseError::kNone;
  size_t consumed = 0;  // input bytes consumed by completed messages
  bool operator==(const ParseRun&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const ParseRun& r) {
  os << "error=" << ErrorName(r.error) << " consumed=" << r.consumed;
  for (const auto& m : r.messages) {
    os << "\n  [" << m.head << "] body=" << fmt::format("{:?}", m.body) << " done=" << m.done;
  }
  return os;
}

inline std::string Describe(const MessageHead& h) {
  std::string s =
      fmt::format("v{}.{} m={} '{}' '{}' st={} '{}' |", h.version_major, h.version_minor, h.method,
                  h.Str(h.method_name), h.Str(h.target), h.status, h.Str(h.reason));
  for (int i = 0; i < h.header_count; ++i) s += fmt::format(" {}={};", h.Name(i), h.Value(i));
  s += fmt::format(" | host={} framing={} cl={} ka={} up={} ec={} head={} len={}", h.host_index,
                   static_cast<int>(h.framing), h.content_length, h.keep_alive, h.upgrade,
                   h.expect_continue, h.is_head_request, h.head_len);
  return s;
}

struct DriveOptions {
  Parser::Kind kind = Parser::Kind::kRequest;
  Parser::Limits limits;
  bool head_request = false;  // responses: every response answers a HEAD
  bool decode = false;
  bool finish = false;  // call Finish() once all input is fed
};

// Feeds `input` (copied into one buffer) in pieces ending at each of `cuts` (ascending), then the
// rest. Follows the Parser contract: Parse again after kHeadDone/kMessageDone (even with 0 bytes)
// and Begin() at each message boundary.
inline ParseRun Drive(const std::string& input, const std::vector<size_t>& cuts,
                      const DriveOptions& o) {
  std::string buf = input;  // the parser may move decoded bytes in place
  char* const data = buf.data();
  ParseRun run;
  Parser parser(o.kind, o.limits);
  parser.Begin(data);
  if (o.head_request) parser.set_head_request(true);
  ParsedMessage cur;
  size_t pos = 0;
  bool failed = false;
  auto step = [&](size_t limit) {
    for (int guard = 0; guard < 10000; ++guard) {
      const char* p = data + pos;
      bool was_in_body = parser.in_body();
      Parser::Result r = parser.Parse(p, limit - pos);
      switch (r.status) {
        case Parser::Status::kNeedMore:
          if (was_in_body) cur.body.append(p, o.decode ? r.decoded : r.consumed);
          pos += r.consumed;
          return;
        case Parser::Status::kHeadDone:
          cur.head = Describe(parser.head());
          if (o.decode && parser.head().framing == Framing::kChunked) parser.set_decode_body(true);
          pos += r.consumed;
          break;
        case Parser::Status::kMessageDone:
          cur.body.append(p, o.decode ? r.decoded : r.consumed);
          cur.done = true;
          pos += r.consumed;
          run.messages.push_back(cur);
          run.consumed = pos;
          cur = {};
          parser.Begin(data + pos);
          if (o.head_request) parser.set_head_request(true);
          break;
        case Parser::Status::kError:
          // How much body went by before the error depends on the split; the error does not.
          cur.body.clear();
          run.error = parser.error();
          failed = true;
          return;
      }
    }
    ADD_FAILURE() << "parser loops";
    failed = true;
  };
  for (size_t cut : cuts) {
    if (failed) break;
    step(cut);
  }
  if (!failed) step(input.size());
  if (!failed && o.finish) {
    Parser::Result r = parser.Finish();
    if (r.status == Parser::Status::kMessageDone) {
      cur.done = true;
      run.messages.push_back(cur);
      run.consumed = pos;
      cur = {};
    } else if (r.status == Parser::Status::kError) {
      cur.body.clear();
      run.error = parser.error();
      failed = true;
    }
  }
  if (!cur.head.empty() || !cur.body.empty()) run.messages.push_back(cur);  // incomplete
  return run;
}

inline ParseRun DriveWhole(const std::string& input, const DriveOptions& o) {
  return Drive(input, {}, o);
}

// Every uniform piece size from 1 to n-1, and every single cut point.
inline std::vector<std::vector<size_t>> AllSplits(size_t n) {
  std::vector<std::vector<size_t>> out;
  for (size_t k = 1; k < n; ++k) {
    std::vector<size_t> cuts;
    for (size_t c = k; c < n; c += k) cuts.push_back(c);
    out.push_back(std::move(cuts));
  }
  for (size_t c = 1; c < n; ++c) out.push_back({c});
  return out;
}

// Parses `input` whole and split every way; every run must equal the whole-input run.
inline ParseRun ExpectSplitInvariant(const std::string& input, const DriveOptions& o) {
  ParseRun whole = DriveWhole(input, o);
  for (const auto& cuts : AllSplits(input.size())) {
    ParseRun split = Drive(input, cuts, o);
    if (!(split == whole)) {
      ADD_FAILURE() << "split run differs; first cut " << cuts.front() << " of " << cuts.size()
                    << "\nwhole: " << whole << "\nsplit: " << split;
      break;
    }
  }
  return whole;
}

// Feeds `input` the way the worker feeds a request parser with set_reframe_chunked: bytes are
// appended to one buffer up to each cut; the head is parsed with Parse() and the body with
// ParseInPlace(); after each call the body bytes before the scan position are taken out as sent
// (the rest moved down behind the head, as the worker does once a send completes); a finished
// message's leftover bytes move to the front for the next one. A message's body is what would
// have been sent; `consumed` counts input bytes.
inline ParseRun DriveInPlace(const std::string& input, const std::vector<size_t>& cuts,
                             const DriveOptions& o) {
  std::vector<char> buf(input.size() + 1);
  char* const data = buf.data();
  uint32_t len = 0;
  uint32_t scan = 0;
  uint32_t head_len = 0;
  size_t fed = 0;
  size_t raw = 0;  // input bytes the parser consumed
  Parser parser(o.kind, o.limits);
  parser.set_reframe_chunked(true);
  parser.Begin(data);
  ParseRun run;
  ParsedMessage cur;
  bool failed = false;
  auto message_done = [&] {
    cur.done = true;
    run.messages.push_back(cur);
    run.consumed = raw;
    cur = {};
    std::memmove(data, data + scan, len - scan);
    len -= scan;
    scan = head_len = 0;
    parser.Begin(data);
  };
  auto step = [&](size_t limit) {
    std::memcpy(data + len, input.data() + fed, limit - fed);
    len += static_cast<uint32_t>(limit - fed);
    fed = limit;
    for (int guard = 0; guard < 10000; ++guard) {
      Parser::Result r;
      if (!parser.head_done()) {
        r = parser.Parse(data + scan, len - scan);
        scan += static_cast<uint32_t>(r.consumed);
        raw += r.consumed;
        if (r.status == Parser::Status::kHeadDone) {
          cur.head = Describe(parser.head());
          head_len = scan;
          continue;
        }
      } else {
        const uint32_t before = len - scan;
        r = parser.ParseInPlace(data, &scan, &len);
        raw += before - (len - scan);  // unparsed bytes left, before and after
        cur.body.append(data + head_len, scan - head_len);
        std::memmove(data + head_len, data + scan, len - scan);
        len -= scan - head_len;
        scan = head_len;
      }
      switch (r.status) {
        case Parser::Status::kNeedMore:
          return;
        case Parser::Status::kMessageDone:
          message_done();
          break;
        case Parser::Status::kError:
          cur.body.clear();
          run.error = parser.error();
          failed = true;
          return;
        case Parser::Status::kHeadDone:
          break;
      }
    }
    ADD_FAILURE() << "parser loops";
    failed = true;
  };
  for (size_t cut : cuts) {
    if (failed) break;
    step(cut);
  }
  if (!failed) step(input.size());
  if (!cur.head.empty() || !cur.body.empty()) run.messages.push_back(cur);  // incomplete
  return run;
}

// DriveInPlace on `input` whole and split every way; every run must equal the whole-input run.
inline ParseRun ExpectSplitInvariantInPlace(const std::string& input, const DriveOptions& o) {
  ParseRun whole = DriveInPlace(input, {}, o);
  for (const auto& cuts : AllSplits(input.size())) {
    ParseRun split = DriveInPlace(input, cuts, o);
    if (!(split == whole)) {
      ADD_FAILURE() << "split run differs; first cut " << cuts.front() << " of " << cuts.size()
                    << "\nwhole: " << whole << "\nsplit: " << split;
      break;
    }
  }
  return whole;
}

}  // namespace l7px::http::testing
