#pragma once

#include <cstddef>
#include <cstdint>

#include "http/message.h"

namespace l7px::http {

struct CommonRequestLimits {
  uint32_t max_header_bytes;
  uint32_t max_target_bytes;
  uint64_t max_body_bytes;
};

// The fast path of the request parser: a complete, valid request head of the shape nearly every
// client sends, read in one pass without llhttp. Parser tries it first and falls back to llhttp
// for everything it declines, so it only ever has to recognise a subset of what the llhttp path
// accepts, and must describe that subset exactly as the llhttp path would.
//
// Handled: a head starting at data[0] and ending within min(len, max_header_bytes) bytes, with
//   - request line "METHOD SP target SP HTTP/1.1|HTTP/1.0 CRLF"; METHOD one of GET HEAD POST PUT
//     DELETE OPTIONS PATCH; target origin-form ('/' then RFC 3986 pchar, '/' and '?'), at most
//     max_target_bytes;
//   - at most kMaxHeaders fields "name:" SP* value CRLF, name a token, value printable ASCII or
//     SP, not ending in SP;
//   - no Transfer-Encoding, Upgrade or Proxy-Connection field; at most one Content-Length (1 to
//     15 digits, at most max_body_bytes) and one Connection ("close" or "keep-alive");
//   - exactly one Host with a valid (or empty) authority, or none on HTTP/1.0.
// Everything else, valid or not (incomplete heads included), returns 0 and leaves `head`
// partly written; the caller resets it.
//
// On success fills `head` (base, head_len, version, method, spans, fields with kinds,
// host_index, framing kNone or kContentLength, content_length, keep_alive, expect_continue,
// is_head_request; upgrade false) and returns head_len.
uint32_t ParseCommonRequestHead(const char* data, size_t len, const CommonRequestLimits& limits,
                                MessageHead* head);

}  // namespace l7px::http
