#include "http/message.h"

#include <llhttp.h>

#include <cstddef>
#include <cstring>

#include "base/strings.h"
#include "http/uri.h"

namespace l7px::http {

int StatusForError(ParseError error) {
  switch (error) {
    case ParseError::kNone:
      return 200;
    case ParseError::kMalformed:
    case ParseError::kObsFold:
    case ParseError::kSpaceBeforeColon:
    case ParseError::kAmbiguousFraming:
    case ParseError::kBadHost:
      return 400;
    case ParseError::kTooManyHeaders:
    case ParseError::kHeaderTooLarge:
      return 431;
    case ParseError::kUriTooLong:
      return 414;
    case ParseError::kBodyTooLarge:
      return 413;
    case ParseError::kVersionNotSupported:
      return 505;
    case ParseError::kMethodNotAllowed:
      return 405;
  }
  return 400;
}

std::string_view ErrorName(ParseError error) {
  switch (error) {
    case ParseError::kNone:
      return "none";
    case ParseError::kMalformed:
      return "malformed";
    case ParseError::kObsFold:
      return "obs_fold";
    case ParseError::kSpaceBeforeColon:
      return "space_before_colon";
    case ParseError::kAmbiguousFraming:
      return "ambiguous_framing";
    case ParseError::kBadHost:
      return "bad_host";
    case ParseError::kTooManyHeaders:
      return "too_many_headers";
    case ParseError::kHeaderTooLarge:
      return "header_too_large";
    case ParseError::kUriTooLong:
      return "uri_too_long";
    case ParseError::kBodyTooLarge:
      return "body_too_large";
    case ParseError::kVersionNotSupported:
      return "version_not_supported";
    case ParseError::kMethodNotAllowed:
      return "method_not_allowed";
  }
  return "unknown";
}

HeaderKind ClassifyHeader(std::string_view name) {
  // By length first: most names are compared with at most two candidates, most of them
  // rejected on the first byte.
  auto is = [name](std::string_view lower) { return EqualsIgnoreCase(name, lower); };
  switch (name.size()) {
    case 2:
      if (is("te")) return HeaderKind::kTe;
      break;
    case 3:
      if (is("via")) return HeaderKind::kVia;
      break;
    case 4:
      if (is("host")) return HeaderKind::kHost;
      break;
    case 6:
      if (is("expect")) return HeaderKind::kExpect;
      break;
    case 7:
      if (is("upgrade")) return HeaderKind::kUpgrade;
      if (is("trailer")) return HeaderKind::kTrailer;
      break;
    case 10:
      if (is("connection")) return HeaderKind::kConnection;
      if (is("keep-alive")) return HeaderKind::kKeepAlive;
      break;
    case 12:
      if (is("x-request-id")) return HeaderKind::kXRequestId;
      break;
    case 14:
      if (is("content-length")) return HeaderKind::kContentLength;
      break;
    case 15:
      if (is("x-forwarded-for")) return HeaderKind::kXForwardedFor;
      break;
    case 16:
      if (is("proxy-connection")) return HeaderKind::kProxyConnection;
      if (is("x-forwarded-host")) return HeaderKind::kXForwardedHost;
      break;
    case 17:
      if (is("transfer-encoding")) return HeaderKind::kTransferEncoding;
      if (is("x-forwarded-proto")) return HeaderKind::kXForwardedProto;
      break;
    case 19:
      if (is("proxy-authorization")) return HeaderKind::kProxyAuthorization;
      break;
    default:
      break;
  }
  return HeaderKind::kOther;
}

namespace {
constexpr MessageHead kEmptyHead{};
}  // namespace

// Every member but `headers` lies before it; a new member added after it would not be reset.
static_assert(offsetof(MessageHead, headers) + sizeof(MessageHead::headers) == sizeof(MessageHead));

void MessageHead::Reset(const char* head_base) {
  std::memcpy(static_cast<void*>(this), &kEmptyHead, offsetof(MessageHead, headers));
  base = head_base;
}

int MessageHead::Find(std::string_view name) const {
  for (int i = 0; i < header_count; ++i) {
    if (EqualsIgnoreCase(Name(i), name)) return i;
  }
  return -1;
}

std::string_view MessageHead::HostForRouting(char* buf, size_t cap) const {
  std::string_view authority;
  std::string_view rest;
  if (!SplitAbsoluteForm(Str(target), &authority, &rest)) {
    if (host_index < 0) return {};
    authority = Value(host_index);
  }
  std::string_view host = StripPort(authority);
  if (host.size() > cap) return {};
  for (size_t i = 0; i < host.size(); ++i) buf[i] = AsciiLower(host[i]);
  return {buf, host.size()};
}

namespace {

// The origin-form part of a target: "/a?x" of "http://h/a?x"; empty when the absolute-form
// target has no path.
std::string_view OriginPart(std::string_view target) {
  std::string_view authority;
  std::string_view rest;
  if (SplitAbsoluteForm(target, &authority, &rest)) return rest;
  return target;
}

}  // namespace

std::string_view MessageHead::Path() const {
  std::string_view t = OriginPart(Str(target));
  size_t end = t.find_first_of("?#");
  if (end != std::string_view::npos) t = t.substr(0, end);
  if (t.empty()) return "/";
  return t;
}

std::string_view MessageHead::OriginFormTarget() const {
  std::string_view t = OriginPart(Str(target));
  // The parser rejects an absolute-form target with an empty path but a query, so an empty
  // origin part means "http://host" exactly.
  if (t.empty()) return "/";
  return t;
}

bool IsIdempotentMethod(uint8_t method) {
  switch (method) {
    case HTTP_GET:
    case HTTP_HEAD:
    case HTTP_OPTIONS:
    case HTTP_TRACE:
    case HTTP_PUT:
    case HTTP_DELETE:
      return true;
    default:
      return false;
  }
}

}  // namespace l7px::http
