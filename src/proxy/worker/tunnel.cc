// Worker::Loop, part of loop.h: what a tunnel (a stream after its service answered 101) adds to
// the byte pump in exchange.cc: its room in the pool (max_tunnels), its leaving the pool's slot
// counts, its idle timeout, and its access-log line when it ends.
//
// Invariants:
//  - A stream holds at most one tunnel claim (RequestState::tunnel_claimed), taken when its
//    upgrade request is routed and given back exactly once: when the request ends without a
//    tunnel (LogRequest, CancelStream) or when its tunnel ends (CancelStream).
//  - A slot leaves its pool's slot counts once, when its stream becomes a tunnel
//    (SlotSide::tunnel), and from then on is killed as a tunnel (KillSlot): never counted twice,
//    never reported on to its instance (which may be reassigned once it has no slots).
//  - A tunnel's Stream::timer is its idle timer: started when it opens, restarted whenever bytes
//    arrive from either side, unlinked when the stream ends (ReleaseStream).
#include "base/log.h"
#include "proxy/worker/loop.h"

namespace l7px::proxy {

bool Worker::Loop::ClaimTunnel(Stream& s) {
  if (s.request.tunnel_claimed) return true;
  if (!s.request.pool->TryClaimTunnel()) return false;
  s.request.tunnel_claimed = true;
  return true;
}

void Worker::Loop::ReleaseTunnelClaim(Stream& s) {
  if (!s.request.tunnel_claimed) return;
  s.request.tunnel_claimed = false;
  s.request.pool->ReleaseTunnelClaim();
}

void Worker::Loop::OpenTunnel(Stream& s) {
  if (!s.upstream.tunnel) {
    slots::AccountLeasedSlotTunneled(*s.request.pool, *s.upstream.slot);
    s.upstream.tunnel = true;
  }
  TimeTunnel(s);
}

void Worker::Loop::TimeTunnel(Stream& s) {
  stream_timers_.For(s.request.limits.tunnel_idle_timeout_ns).Start(&s.timer, now_ns_);
}

void Worker::Loop::OnTunnelIdle(Stream& s) {
  L7PX_LOG_LIMITED(kInfo,
                   "pool {}: tunnel of client {} to {} idle past tunnel_idle_timeout; closed",
                   s.request.pool->name(), std::string_view(s.conn->ip, s.conn->ip_len),
                   std::string_view(s.request.service, s.request.service_len));
  s.conn->protocol->Abort(s);
}

void Worker::Loop::EndTunnel(Stream& s) {
  LogRequest(s);  // status 101, bytes both ways, the tunnel's whole life
  ReleaseTunnelClaim(s);
}

}  // namespace l7px::proxy
