#include "connect/relay.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "base/strings.h"
#include "http/status_text.h"

namespace l7px::connect {

namespace {

http::Parser::Limits RequestLimits() {
  http::Parser::Limits l;
  l.max_header_bytes = Relay::kBufferSize;
  l.max_target_bytes = Relay::kBufferSize;
  l.max_fields = http::kMaxHeadFields;  // a head l7px wrote (its own fields added)
  return l;
}

http::Parser::Limits ResponseLimits() {
  http::Parser::Limits l;
  l.max_header_bytes = Relay::kBufferSize;
  l.max_fields = http::kMaxHeadFields;
  return l;
}

// Whether a request names itself safe to send twice beyond its method (an Idempotency-Key).
bool Replayable(const http::MessageHead& h) {
  return http::IsIdempotentMethod(h.method) || h.Find("Idempotency-Key") >= 0;
}

// Appends `s` at out[*at] when it fits.
bool Put(char* out, size_t cap, size_t* at, std::string_view s) {
  if (cap - *at < s.size()) return false;
  std::memcpy(out + *at, s.data(), s.size());
  *at += s.size();
  return true;
}

// Whether the Connection fields of `h` list `name`.
bool NamedByConnection(const http::MessageHead& h, std::string_view name) {
  for (int i = 0; i < h.header_count; ++i) {
    if (h.Kind(i) != http::HeaderKind::kConnection) continue;
    std::string_view v = h.Value(i);
    while (!v.empty()) {
      const size_t comma = v.find(',');
      if (EqualsIgnoreCase(TrimOws(v.substr(0, comma)), name)) return true;
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return false;
}

// The head of a final response that would end its connection, re-written as a persistent
// HTTP/1.1 one: Connection, Keep-Alive, Proxy-Connection and the fields Connection names are
// left out. 0 when it does not fit.
size_t PersistentHead(const http::MessageHead& h, char* out, size_t cap) {
  size_t at = 0;
  char status[4] = {static_cast<char>('0' + h.status / 100 % 10),
                    static_cast<char>('0' + h.status / 10 % 10),
                    static_cast<char>('0' + h.status % 10), ' '};
  if (!Put(out, cap, &at, "HTTP/1.1 ") || !Put(out, cap, &at, std::string_view(status, 4)) ||
      !Put(out, cap, &at, h.Str(h.reason)) || !Put(out, cap, &at, "\r\n")) {
    return 0;
  }
  for (int i = 0; i < h.header_count; ++i) {
    const http::HeaderKind k = h.Kind(i);
    if (k == http::HeaderKind::kConnection || k == http::HeaderKind::kKeepAlive ||
        k == http::HeaderKind::kProxyConnection || NamedByConnection(h, h.Name(i))) {
      continue;
    }
    if (!Put(out, cap, &at, h.Name(i)) || !Put(out, cap, &at, ": ") ||
        !Put(out, cap, &at, h.Value(i)) || !Put(out, cap, &at, "\r\n")) {
      return 0;
    }
  }
  return Put(out, cap, &at, "\r\n") ? at : 0;
}

bool WouldBlock() { return errno == EAGAIN || errno == EWOULDBLOCK; }

}  // namespace

Relay::Relay(LocalPool& pool, RelayHooks& hooks, Stops stops)
    : pool_(pool),
      hooks_(hooks),
      stops_(stops),
      req_(new char[kBufferSize]),
      resp_(new char[kBufferSize]),
      head_out_(new char[kBufferSize]),
      req_parser_(http::Parser::Kind::kRequest, RequestLimits()),
      resp_parser_(http::Parser::Kind::kResponse, ResponseLimits()),
      quick_ack_(!pool.unix_socket()) {}

void Relay::WriteError(int slot_fd, int status, bool close) {
  const std::string_view reason = http::ReasonPhrase(status, "Error");
  // Small and rare (a failing service): formatting into a stack buffer, no allocation.
  char buf[256];
  const auto r = fmt::format_to_n(buf, sizeof(buf),
                                  "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\n"
                                  "Content-Length: {}\r\n{}\r\n{} {}\n",
                                  status, reason, reason.size() + 5,
                                  close ? "Connection: close\r\n" : "", status, reason);
  SendAll(slot_fd, std::string_view(buf, std::min(r.size, sizeof(buf))), stops_, WaitKind::kBusy,
          Clock::now() + std::chrono::seconds(10));
}

Relay::Result Relay::Serve(UniqueFd& slot, std::string_view pending) {
  Result result;
  if (pending.size() > kBufferSize) return result;
  std::memcpy(req_.get(), pending.data(), pending.size());
  rlen_ = static_cast<uint32_t>(pending.size());
  while (true) {
    // Read one request head (bytes left from the last exchange first).
    req_parser_.Begin(req_.get());
    rscan_ = 0;
    while (true) {
      const http::Parser::Result r = req_parser_.Parse(req_.get() + rscan_, rlen_ - rscan_);
      if (r.status == http::Parser::Status::kError) {
        L7PX_LOG_LIMITED(kWarn, "connect: a malformed request on a slot ({}); closing it",
                         http::ErrorName(req_parser_.error()));
        WriteError(slot.get(), 400, true);
        return result;
      }
      rscan_ += static_cast<uint32_t>(r.consumed);
      if (r.status == http::Parser::Status::kHeadDone) break;
      if (rlen_ == kBufferSize) {
        WriteError(slot.get(), 431, true);
        return result;
      }
      const ssize_t n = RecvSome(slot.get(), req_.get() + rlen_, kBufferSize - rlen_);
      if (n > 0) {
        rlen_ += static_cast<uint32_t>(n);
        continue;
      }
      if (n == 0 || !WouldBlock()) return result;  // l7px closed the slot
      // Between requests a stop closes the slot; inside a head only an abort does.
      const WaitKind kind = rlen_ == 0 ? WaitKind::kIdle : WaitKind::kBusy;
      const WaitResult w = WaitFd(slot.get(), POLLIN, stops_, kind, Forever());
      if (w == WaitResult::kStopped) {
        result.end = rlen_ == 0 ? End::kStopped : End::kClosed;
        return result;
      }
      if (w != WaitResult::kReady) return result;
    }
    const http::MessageHead& head = req_parser_.head();
    head_request_ = head.is_head_request;
    upgrade_request_ = head.upgrade;
    const bool replayable = Replayable(head);

    rsent_ = 0;
    req_done_ = false;
    req_discard_ = false;
    req_intact_ = true;
    // Before the lease: a body that does not parse ends the slot with nothing held.
    if (!ParseRequest()) return result;  // a body without a request: l7px never sends one

    // Waiting for one of the N connections also watches the slot: when l7px closes it (the
    // client left), the request is dropped here, never sent to the service.
    LocalPool::Lease lease = pool_.Acquire(stops_, WaitKind::kBusy, slot.get());
    if (!lease.ok) return result;  // aborted, or l7px closed the slot
    UniqueFd local = std::move(lease.fd);
    bool reused = lease.reused;
    Outcome outcome = Outcome::kFailedEarly;
    bool local_keep = false;
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!local) {
        std::string error;
        local = pool_.Dial(stops_, &error);
        reused = false;
        if (!local) {
          if (stops_.Stopped(WaitKind::kBusy)) {
            outcome = Outcome::kAborted;
            break;
          }
          hooks_.LocalUnreachable(error);
          outcome = Outcome::kFailedEarly;
          break;
        }
      }
      outcome = Exchange(slot, local, &local_keep);
      if (outcome != Outcome::kFailedEarly || !reused || !req_intact_ || !replayable) break;
      // The classic keep-alive race: the service closed the idle connection as the request
      // went out. Nothing of it was answered, and all of it is still here: send it again on a
      // fresh connection.
      L7PX_LOG(kDebug, "connect: a reused connection to the service failed; resending");
      local.Reset();
      rsent_ = 0;
      req_discard_ = false;
    }
    if (outcome == Outcome::kTunnel) {
      pool_.Release(UniqueFd(), false);  // the tunnel's connection no longer counts
      result.end = End::kTunnel;
      return result;
    }
    if (outcome == Outcome::kSlotGone && local && req_done_ && !req_discard_ && rsent_ == rscan_ &&
        !resp_done_ && !tunnel_) {
      local_keep = DrainResponse(local.get());
      pool_.Release(std::move(local), local_keep);
      return result;
    }
    pool_.Release(std::move(local), outcome == Outcome::kDone && local_keep);
    switch (outcome) {
      case Outcome::kDone:
        ++result.exchanges;
        break;
      case Outcome::kFailedEarly:
      case Outcome::kBadResponse:
        // One whole answer for l7px. The slot goes on only when the request was read whole
        // (otherwise its rest would be taken for the next request).
        WriteError(slot.get(), 502, !req_done_);
        if (!req_done_) return result;
        slot_keep_ = true;
        break;
      case Outcome::kSlotGone:
      case Outcome::kAborted:
      case Outcome::kTunnel:
        return result;
    }
    if (!slot_keep_) return result;
    // Bytes after the request (l7px writes one request at a time: normally none).
    std::memmove(req_.get(), req_.get() + rscan_, rlen_ - rscan_);
    rlen_ -= rscan_;
  }
}

// Parses the request bytes that arrived (its body). False on a malformed body.
bool Relay::ParseRequest() {
  while (!req_done_) {
    const http::Parser::Result r = req_parser_.Parse(req_.get() + rscan_, rlen_ - rscan_);
    if (r.status == http::Parser::Status::kError) {
      L7PX_LOG_LIMITED(kWarn, "connect: a malformed request body on a slot ({})",
                       http::ErrorName(req_parser_.error()));
      return false;
    }
    rscan_ += static_cast<uint32_t>(r.consumed);
    if (r.status == http::Parser::Status::kMessageDone) req_done_ = true;
    if (r.status == http::Parser::Status::kNeedMore) break;
  }
  return true;
}

bool Relay::DrainResponse(int lfd) {
  const Clock::time_point deadline = Clock::now() + kDrainLimit;
  bool keep = true;
  while (true) {
    while (!resp_done_) {
      const http::Parser::Result r = resp_parser_.Parse(resp_.get() + pscan_, plen_ - pscan_);
      if (r.status == http::Parser::Status::kError) return false;
      pscan_ += static_cast<uint32_t>(r.consumed);
      if (r.status == http::Parser::Status::kNeedMore) break;
      if (r.status == http::Parser::Status::kMessageDone) {
        resp_done_ = true;
        break;
      }
      const http::MessageHead& h = resp_parser_.head();  // kHeadDone
      if (h.status == 101) return false;
      if (h.status < 200) {  // interim: the final head follows, parsed from the buffer's start
        std::memmove(resp_.get(), resp_.get() + pscan_, plen_ - pscan_);
        plen_ -= pscan_;
        pscan_ = 0;
        resp_parser_.Begin(resp_.get());
        resp_parser_.set_head_request(head_request_);
        continue;
      }
      resp_head_ = true;
      if (!h.keep_alive || h.framing == http::Framing::kUntilClose) keep = false;
    }
    if (resp_done_) return keep && plen_ == pscan_;
    if (resp_head_ && pscan_ == plen_) plen_ = pscan_ = 0;  // body bytes: read away
    if (!resp_head_ && plen_ == kBufferSize) return false;
    const ssize_t n = RecvSome(lfd, resp_.get() + plen_, kBufferSize - plen_);
    if (n > 0) {
      plen_ += static_cast<uint32_t>(n);
      continue;
    }
    if (n == 0 || !WouldBlock()) return false;  // closed (or failed): it is over too
    if (WaitFd(lfd, POLLIN, stops_, WaitKind::kBusy, deadline) != WaitResult::kReady) {
      return false;
    }
  }
}

// Parses what arrived from the service. False with *fail set when the exchange must end.
bool Relay::ParseResponse(int slot_fd, Outcome* fail) {
  while (!resp_done_) {
    const http::Parser::Result r = resp_parser_.Parse(resp_.get() + pscan_, plen_ - pscan_);
    if (r.status == http::Parser::Status::kError) {
      L7PX_LOG_LIMITED(kWarn, "connect: malformed response from the service ({})",
                       http::ErrorName(resp_parser_.error()));
      *fail = slot_written_ ? Outcome::kSlotGone : Outcome::kBadResponse;
      return false;
    }
    pscan_ += static_cast<uint32_t>(r.consumed);
    if (r.status == http::Parser::Status::kNeedMore) return true;
    if (r.status == http::Parser::Status::kMessageDone) {
      resp_done_ = true;
      return true;
    }
    // kHeadDone.
    const http::MessageHead& h = resp_parser_.head();
    if (h.status == 101) {
      if (!upgrade_request_) {
        *fail = slot_written_ ? Outcome::kSlotGone : Outcome::kBadResponse;
        return false;
      }
      resp_head_ = true;
      tunnel_ = true;
      return true;
    }
    if (h.status < 200) {
      // Interim (100 Continue, 103 Early Hints): passed on as it is, then the next head.
      if (!SendAll(slot_fd, std::string_view(resp_.get() + psent_, pscan_ - psent_), stops_,
                   WaitKind::kBusy, Forever())) {
        *fail = Outcome::kSlotGone;
        return false;
      }
      slot_written_ = true;
      std::memmove(resp_.get(), resp_.get() + pscan_, plen_ - pscan_);
      plen_ -= pscan_;
      pscan_ = psent_ = 0;
      resp_parser_.Begin(resp_.get());
      resp_parser_.set_head_request(head_request_);
      continue;
    }
    resp_head_ = true;
    if (h.framing == http::Framing::kUntilClose) {
      slot_keep_ = false;  // its end is the close: l7px must see one
    } else if (!h.keep_alive) {
      const size_t n = PersistentHead(h, head_out_.get(), kBufferSize);
      if (n == 0) {
        *fail = Outcome::kBadResponse;
        return false;
      }
      hlen_ = static_cast<uint32_t>(n);
      hsent_ = 0;
      psent_ = h.head_len;  // the original head is replaced
    }
  }
  return true;
}

Relay::Outcome Relay::Exchange(UniqueFd& slot, UniqueFd& local, bool* local_keep) {
  const int sfd = slot.get();
  const int lfd = local.get();
  *local_keep = true;
  plen_ = pscan_ = psent_ = hlen_ = hsent_ = 0;
  resp_head_ = resp_done_ = slot_written_ = tunnel_ = false;
  slot_keep_ = true;
  resp_parser_.Begin(resp_.get());
  resp_parser_.set_head_request(head_request_);
  bool got_response_byte = false;
  bool read_local = false;  // the last round read from the service
  while (true) {
    if (!ParseRequest()) {
      *local_keep = false;
      return Outcome::kSlotGone;
    }
    if (req_discard_) rsent_ = rscan_;
    Outcome fail;
    if (!ParseResponse(sfd, &fail)) {
      *local_keep = false;
      return fail;
    }
    if (read_local && !resp_done_ && quick_ack_) {
      // Part of a response is here: acknowledge it now. A service that writes a response in
      // pieces with Nagle on (Python's http.server: head, then body) holds the next piece
      // until then, which the kernel's delayed ACK would make up to 40 ms a response.
      const int one = 1;
      setsockopt(lfd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
    }
    read_local = false;
    if (tunnel_) {
      *local_keep = false;
      return StartTunnel(slot, local) ? Outcome::kTunnel : Outcome::kSlotGone;
    }
    if (resp_done_ && hsent_ == hlen_ && psent_ == pscan_) {
      const http::MessageHead& h = resp_parser_.head();
      if (!h.keep_alive || h.framing == http::Framing::kUntilClose || rsent_ < rscan_ ||
          !req_done_) {
        *local_keep = false;  // the service did not read all of the request, or closes
      }
      // A response that came before the whole request: its rest would be taken for the next
      // request, so the slot closes (l7px sees the complete response first).
      if (!req_done_) slot_keep_ = false;
      if (plen_ > pscan_) *local_keep = false;  // bytes after the response: not HTTP
      return Outcome::kDone;
    }

    // Buffers whose bytes all went out start over (a request's head and the response head are
    // parsed from the start of theirs, so only bodies get here).
    if (!req_done_ && rlen_ == kBufferSize && rsent_ == rscan_ && rscan_ == rlen_) {
      rlen_ = rscan_ = rsent_ = 0;
      req_intact_ = false;
    }
    if (resp_head_ && !resp_done_ && hsent_ == hlen_ && psent_ == pscan_ && pscan_ == plen_) {
      plen_ = pscan_ = psent_ = 0;
    }
    if (!resp_head_ && plen_ == kBufferSize) {
      L7PX_LOG_LIMITED(kWarn, "connect: a response head from the service is over {} bytes",
                       kBufferSize);
      *local_keep = false;
      return Outcome::kBadResponse;
    }

    bool progress = false;
    short slot_events = POLLRDHUP;  // l7px giving up on the exchange is seen at any time
    short local_events = 0;
    // To the service.
    if (rsent_ < rscan_) {
      const ssize_t n = SendSome(lfd, req_.get() + rsent_, rscan_ - rsent_);
      if (n > 0) {
        rsent_ += static_cast<uint32_t>(n);
        progress = true;
      } else if (n < 0 && WouldBlock()) {
        local_events |= POLLOUT;
      } else {
        // The service stopped reading (it may have answered already): read its answer.
        req_discard_ = true;
        *local_keep = false;
        rsent_ = rscan_;
        progress = true;
      }
    }
    // To l7px.
    if (hsent_ < hlen_ || (resp_head_ && psent_ < pscan_)) {
      const bool head = hsent_ < hlen_;
      const char* p = head ? head_out_.get() + hsent_ : resp_.get() + psent_;
      const uint32_t len = head ? hlen_ - hsent_ : pscan_ - psent_;
      const ssize_t n = SendSome(sfd, p, len);
      if (n > 0) {
        (head ? hsent_ : psent_) += static_cast<uint32_t>(n);
        slot_written_ = true;
        progress = true;
      } else if (n < 0 && WouldBlock()) {
        slot_events |= POLLOUT;
      } else {
        *local_keep = false;
        return Outcome::kSlotGone;
      }
    }
    // From l7px.
    if (!req_done_ && rlen_ < kBufferSize) {
      const ssize_t n = RecvSome(sfd, req_.get() + rlen_, kBufferSize - rlen_);
      if (n > 0) {
        rlen_ += static_cast<uint32_t>(n);
        progress = true;
      } else if (n < 0 && WouldBlock()) {
        slot_events |= POLLIN;
      } else {
        *local_keep = false;
        return Outcome::kSlotGone;
      }
    }
    // From the service.
    if (!resp_done_ && plen_ < kBufferSize) {
      const ssize_t n = RecvSome(lfd, resp_.get() + plen_, kBufferSize - plen_);
      if (n > 0) {
        plen_ += static_cast<uint32_t>(n);
        got_response_byte = true;
        read_local = true;
        progress = true;
      } else if (n < 0 && WouldBlock()) {
        local_events |= POLLIN;
      } else {
        *local_keep = false;
        if (!got_response_byte) return Outcome::kFailedEarly;
        if (!resp_head_) return Outcome::kBadResponse;
        // A close-delimited body ends here; any other is cut short.
        if (n == 0 && resp_parser_.Finish().status == http::Parser::Status::kMessageDone) {
          resp_done_ = true;
          slot_keep_ = false;
          progress = true;
        } else {
          return Outcome::kSlotGone;
        }
      }
    }
    if (progress) continue;

    pollfd fds[6];
    nfds_t count = 0;
    fds[count++] = {sfd, slot_events, 0};
    if (local_events != 0) fds[count++] = {lfd, local_events, 0};
    for (const Stopper* s : {stops_.a, stops_.b}) {
      if (s != nullptr) fds[count++] = {s->abort_fd(), POLLIN, 0};
    }
    const int r = poll(fds, count, -1);
    if (r < 0 && errno != EINTR) return Outcome::kSlotGone;
    if (stops_.Stopped(WaitKind::kBusy)) {
      *local_keep = false;
      return Outcome::kAborted;
    }
    // l7px closed the slot while we wait for the service (or for more of the request).
    if ((fds[0].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0 && (slot_events & POLLIN) == 0) {
      *local_keep = false;
      return Outcome::kSlotGone;
    }
  }
}

bool Relay::StartTunnel(UniqueFd& slot, UniqueFd& local) {
  // The 101 head and whatever the service sent after it go to l7px first (PumpTunnel sends
  // `to_slot` before anything else), the request's rest (client bytes) to the service.
  std::string to_slot(resp_.get() + psent_, plen_ - psent_);
  std::string to_local(req_.get() + rsent_, rlen_ - rsent_);
  rlen_ = rscan_ = rsent_ = 0;
  hooks_.StartTunnel(std::move(slot), std::move(local), std::move(to_local), std::move(to_slot));
  return true;
}

void PumpTunnel(int a, int b, std::string to_b, std::string to_a, const Stops& stops) {
  struct Direction {
    int from, to;
    std::string buf;  // pending bytes
    size_t sent = 0;
    bool eof = false;  // `from` ended and `to` was half-closed
  };
  Direction dirs[2] = {{a, b, std::move(to_b)}, {b, a, std::move(to_a)}};
  constexpr size_t kChunk = 64 * 1024;
  for (Direction& d : dirs) d.buf.reserve(kChunk);
  while (!(dirs[0].eof && dirs[1].eof)) {
    bool progress = false;
    pollfd fds[4];
    nfds_t count = 0;
    short events[2] = {0, 0};  // per fd: a, b
    for (Direction& d : dirs) {
      const int to_i = d.to == a ? 0 : 1;
      const int from_i = 1 - to_i;
      if (d.sent < d.buf.size()) {
        const ssize_t n = SendSome(d.to, d.buf.data() + d.sent, d.buf.size() - d.sent);
        if (n > 0) {
          d.sent += static_cast<size_t>(n);
          progress = true;
        } else if (n < 0 && WouldBlock()) {
          events[to_i] |= POLLOUT;
        } else {
          return;
        }
        continue;
      }
      if (d.eof) continue;
      d.buf.clear();
      d.sent = 0;
      d.buf.resize(kChunk);
      const ssize_t n = RecvSome(d.from, d.buf.data(), kChunk);
      if (n > 0) {
        d.buf.resize(static_cast<size_t>(n));
        progress = true;
      } else if (n < 0 && WouldBlock()) {
        d.buf.clear();
        events[from_i] |= POLLIN;
      } else {
        d.buf.clear();
        if (n < 0) return;
        shutdown(d.to, SHUT_WR);
        d.eof = true;
        progress = true;
      }
    }
    if (progress) continue;
    if (events[0] != 0) fds[count++] = {a, events[0], 0};
    if (events[1] != 0) fds[count++] = {b, events[1], 0};
    for (const Stopper* s : {stops.a, stops.b}) {
      if (s != nullptr) fds[count++] = {s->abort_fd(), POLLIN, 0};
    }
    if (poll(fds, count, -1) < 0 && errno != EINTR) return;
    if (stops.Stopped(WaitKind::kBusy)) return;
  }
}

}  // namespace l7px::connect
