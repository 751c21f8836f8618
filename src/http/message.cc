#include "http/message.h"

#include <llhttp.h>

#include <array>
#include <cstddef>
#include <cstring>

#include "base/strings.h"
#include "http/char_scan.h"
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

namespace {

struct KnownName {
  std::string_view lower;
  HeaderKind kind;
};

constexpr KnownName kKnownNames[] = {
    {"te", HeaderKind::kTe},
    {"via", HeaderKind::kVia},
    {"host", HeaderKind::kHost},
    {"expect", HeaderKind::kExpect},
    {"upgrade", HeaderKind::kUpgrade},
    {"trailer", HeaderKind::kTrailer},
    {"connection", HeaderKind::kConnection},
    {"keep-alive", HeaderKind::kKeepAlive},
    {"x-request-id", HeaderKind::kXRequestId},
    {"forwarded", HeaderKind::kForwarded},
    {"content-length", HeaderKind::kContentLength},
    {"x-forwarded-for", HeaderKind::kXForwardedFor},
    {"proxy-connection", HeaderKind::kProxyConnection},
    {"x-forwarded-host", HeaderKind::kXForwardedHost},
    {"transfer-encoding", HeaderKind::kTransferEncoding},
    {"x-forwarded-proto", HeaderKind::kXForwardedProto},
    {"proxy-authorization", HeaderKind::kProxyAuthorization},
};

// A name's slot: its length plus its first byte lower-cased, mod 32. No two known names share a
// slot (checked below), so a name is compared with at most one of them, without branching on
// its length.
constexpr size_t NameSlot(std::string_view name) {
  return (name.size() + static_cast<unsigned char>(name[0] | 0x20)) & 31;
}

constexpr bool SlotsAreDistinct() {
  for (size_t i = 0; i < std::size(kKnownNames); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (NameSlot(kKnownNames[i].lower) == NameSlot(kKnownNames[j].lower)) return false;
    }
  }
  return true;
}
static_assert(SlotsAreDistinct(), "two known field names share a slot: change NameSlot");

constexpr std::array<int8_t, 32> kSlots = [] {
  std::array<int8_t, 32> slots{};
  for (int8_t& s : slots) s = -1;
  for (size_t i = 0; i < std::size(kKnownNames); ++i) {
    slots[NameSlot(kKnownNames[i].lower)] = static_cast<int8_t>(i);
  }
  return slots;
}();

}  // namespace

namespace {

// `name` spells `lower` with at least one '_' where `lower` has '-' (case aside).
bool IsUnderscoreAlias(std::string_view name, std::string_view lower) {
  if (name.size() != lower.size() || name.find('_') == std::string_view::npos) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i] == '_' ? '-' : AsciiLower(name[i]);
    if (c != lower[i]) return false;
  }
  return true;
}

}  // namespace

HeaderKind ClassifyHeader(std::string_view name) {
  if (name.empty()) return HeaderKind::kOther;
  const int8_t i = kSlots[NameSlot(name)];
  if (i < 0) return HeaderKind::kOther;
  if (EqualsLowercase(name, kKnownNames[i].lower)) return kKnownNames[i].kind;
  // An alias has the length and first byte of the name it imitates: the same slot.
  switch (kKnownNames[i].kind) {
    case HeaderKind::kXForwardedFor:
    case HeaderKind::kXForwardedProto:
    case HeaderKind::kXForwardedHost:
    case HeaderKind::kXRequestId:
      if (IsUnderscoreAlias(name, kKnownNames[i].lower)) return HeaderKind::kForwardingAlias;
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
  if (t == "*") return "/";  // OPTIONS *: the server in general, so its root route
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
