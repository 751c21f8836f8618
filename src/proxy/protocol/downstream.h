#pragma once

// The downstream-protocol seam: how a client connection's decoded bytes become requests
// (streams) and how what the exchange engine produces for each stream is framed for the client.
//
// Three parts meet here:
//  - the loop (proxy/worker/loop.cc, client_io.cc) owns the socket, the transport, the
//    connection's input buffer and the client send; it calls the connection hooks below;
//  - the exchange engine (proxy/worker/dispatch.cc, exchange.cc, streams.cc) routes a stream,
//    queues it, leases a slot, sends the request and parses the response; it works on streams
//    only and calls the stream hooks below;
//  - a protocol (HTTP/1.1: protocol/http1/; HTTP/2 will sit beside it) implements this class.
//    It parses requests into streams and starts them (Loop::StartStream), hands the engine the
//    request body, writes heads for the client into the stream's `out` buffer and sends through
//    the loop. HTTP/1.1 runs one stream at a time per connection; HTTP/2 runs many at once, each
//    with its own slot, and multiplexes their output.
//
// Contract, for every hook:
//  - Worker thread only; a hook may close the connection (Loop::Close) or end the stream, and
//    its caller checks the stream's or connection's state before going on.
//  - The engine never writes to the client or reads client bytes itself; the protocol never
//    touches a slot. A stream's slot is the engine's until Finish (released or being retired).
//
// One object per worker and protocol, shared by its connections; per-connection state lives in
// the DownstreamState the protocol hangs on Connection::session.

#include <sys/uio.h>

#include <cstdint>

namespace l7px::proxy {
struct Connection;
struct Stream;
}  // namespace l7px::proxy

namespace l7px::proxy::protocol {

// What a protocol keeps per connection while it has a request in progress (HTTP/1.1: its
// request parser and its one stream). Pooled by the protocol: never allocated per request in
// steady state.
struct DownstreamState {};

class Downstream {
 public:
  virtual ~Downstream() = default;

  // ---- the connection (called by the loop)

  // Decoded bytes arrived at c.in[c.in_scan, c.in_len), or room appeared after backpressure.
  virtual void OnInput(Connection& c) = 0;

  // The client half-closed: what is buffered is all there will be.
  virtual void OnEof(Connection& c) = 0;

  // `plaintext` bytes of the last Loop::SendToClient went out (maybe fewer than it was given:
  // then the protocol sends the rest). Only one client send is in flight at a time.
  virtual void OnSent(Connection& c, uint32_t plaintext) = 0;

  // The connection's timer fired (header, keep-alive or send timeout: whatever the protocol
  // last started on Connection::timer).
  virtual void OnTimeout(Connection& c) = 0;

  // The connection is closing: end every stream (Loop::EndStreamOnClose for each). Its state is
  // returned in Release, once no operation is in flight.
  virtual void OnClose(Connection& c) = 0;

  // The connection is freed: return its DownstreamState and its streams' buffers.
  virtual void Release(Connection& c) = 0;

  // ---- a stream (called by the exchange engine)

  // The stream's ready request body bytes, after the rewritten head: parses what arrived. False
  // when the body is malformed (the stream was answered or the connection closed).
  virtual bool RequestBody(Stream& s, iovec* body) = 0;

  // `n` bytes of what RequestBody gave went to the slot.
  virtual void RequestBodySent(Stream& s, uint32_t n) = 0;

  // The request has a slot now: a client that asked to be told before sending its body
  // (Expect: 100-continue) is told.
  virtual void BodyWanted(Stream& s) = 0;

  // The final response head is parsed (s.resp.head()): decides how the client gets it (body
  // framing in s.upstream.decode_body, whether the connection goes on) and writes its head
  // into s.out. False when it cannot (too large): the engine fails the exchange with a 502.
  virtual bool StartResponse(Stream& s) = 0;

  // An interim (1xx, not 101) response is parsed: writes it into s.out for the client, or not
  // (a client that cannot take one). True when written.
  virtual bool WriteInterim(Stream& s) = 0;

  // s.out[out_sent, out_len) and then s.resp_buf[fwd_off, fwd_off + fwd_len) are ready for
  // the client. When the client took them the protocol calls Loop::ResponseSent(s).
  virtual void SendResponse(Stream& s) = 0;

  // The 101 went out: from now on every byte from the client is tunnel payload for the slot
  // (RequestBody gives all of it, and the request never ends).
  virtual void StartTunnel(Stream& s) = 0;

  // The service half-closed the tunnel: the client's direction ends too (after what was sent).
  virtual void EndTunnelOutput(Stream& s) = 0;

  // l7px answers the request itself; `close`: nothing more can follow it on this connection.
  virtual void Answer(Stream& s, int status, bool close) = 0;

  // The response cannot be completed (the service failed after some of it went out): the
  // client must see it broken (HTTP/1.1 closes the connection).
  virtual void Abort(Stream& s) = 0;

  // The exchange is over: its slot is released, or being retired (s.upstream.slot still set
  // while its operations drain). The protocol logs the request (Loop::LogRequest) and moves on.
  virtual void Finish(Stream& s) = 0;
};

}  // namespace l7px::proxy::protocol
