#pragma once

// HTTP/1.1 (and 1.0) toward clients: one request at a time per connection, pipelined requests
// answered in order, Expect: 100-continue, Connection: close, chunked bodies re-framed for the
// service and de-chunked for HTTP/1.0 clients, upgrades (101) into tunnels.
//
// Invariants:
//  - A connection has an Http1Exchange (Connection::session) from the first byte of a request
//    until it is idle again with nothing buffered; its one stream is that exchange's.
//  - c.in holds, in order: [0, head_len) the current request's head (kept for the access log
//    and the stream's head view), [head_len, in_scan) parsed body bytes not yet sent to the
//    slot (a chunked body re-framed), [in_scan, in_len) unparsed bytes (more body, an
//    incomplete chunk-size line, or pipelined requests). After a 101 everything from head_len
//    is tunnel payload.
//  - The next pipelined request is parsed only once the current one is finished and logged.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "http/parser.h"
#include "proxy/protocol/downstream.h"
#include "proxy/worker/connection.h"
#include "proxy/worker/stream.h"
#include "proxy/worker/worker.h"

namespace l7px::proxy::protocol {

struct Http1Exchange : DownstreamState {
  explicit Http1Exchange(const http::Parser::Limits& request_limits)
      : req(http::Parser::Kind::kRequest, request_limits) {
    // Services get chunked request bodies in canonical framing, whatever the client sent.
    req.set_reframe_chunked(true);
  }

  http::Parser req;
  uint32_t head_len = 0;
  bool sending = false;      // a send of this protocol's is in flight (not a transport flush)
  bool send_wanted = false;  // SendHead found the connection busy: send when it frees
  Stream stream;
};

class Http1 final : public Downstream {
 public:
  explicit Http1(Worker::Loop& loop) : loop_(loop) {}
  ~Http1() override;
  Http1(const Http1&) = delete;
  Http1& operator=(const Http1&) = delete;

  void OnInput(Connection& c) override;
  void OnEof(Connection& c) override;
  void OnSent(Connection& c, uint32_t plaintext) override;
  void OnTimeout(Connection& c) override;
  void OnClose(Connection& c) override;
  void Release(Connection& c) override;

  bool RequestBody(Stream& s, iovec* body) override;
  void RequestBodySent(Stream& s, uint32_t n) override;
  void BodyWanted(Stream& s) override;
  bool StartResponse(Stream& s) override;
  bool WriteInterim(Stream& s) override;
  void SendResponse(Stream& s) override;
  void StartTunnel(Stream& s) override;
  void EndTunnelOutput(Stream& s) override;
  void Answer(Stream& s, int status, bool close) override;
  void Abort(Stream& s) override;
  void Finish(Stream& s) override;

 private:
  static Http1Exchange* Of(const Connection& c) { return static_cast<Http1Exchange*>(c.session); }
  static Http1Exchange& Of(const Stream& s) { return *Of(*s.conn); }

  // The connection's exchange, taken from the free list when a request begins.
  Http1Exchange& Ensure(Connection& c);

  void ParseHead(Connection& c);

  void OnRequestHead(Connection& c);

  // A small body is received whole before the request takes a slot or a place in the queue
  // (server.body_buffer), so a slow upload holds its own connection only, not one of the
  // service's slots, and the service gets the body at its own pace. Longer bodies stream.
  bool WaitForBody(Stream& s);

  // The whole body is here, or as much of it as server.body_buffer (or the input buffer) holds.
  bool BodyBuffered(const Stream& s) const;

  void ReadBodyBeforeDispatch(Connection& c);

  // Parses request body bytes waiting in `in` (up to the end of the message). False when the
  // body is malformed (the connection was answered/closed).
  bool ScanBody(Stream& s);

  // 100 Continue, l7px's own: the body is wanted now.
  void SendContinue(Stream& s);

  // Sends the stream's out[out_sent, out_len) then its forwarded bytes, timing the client's
  // pace (send_timeout) while an exchange or an answer waits for it.
  void SendHead(Stream& s);

  // The client took everything sent: what comes next depends on the stream.
  void AfterSent(Connection& c);

  // The request is over (answered and logged): the next pipelined one, or idle, or closed.
  void FinishRequest(Connection& c);

  // While draining, a response closes its connection unless the client already sent more
  // (pipelined bytes are answered first; the last response closes).
  bool DrainWantsClose(const Connection& c) const;

  // The client half-closed (sent its last byte) and no further request is buffered: the
  // response being made is its last, so it says Connection: close.
  bool ClientDoneAfterThis(const Connection& c) const;

  // The head of a response l7px wrote (through its blank line): what a HEAD request gets.
  static size_t HeadLength(const char* response, size_t len);

  // Returns the connection's exchange (and its input buffer) when it is idle with nothing
  // buffered.
  void ReleaseExchange(Connection& c);

  Worker::Loop& loop_;
  std::vector<Http1Exchange*> free_;
  size_t made_ = 0;  // exchanges created: free_ has room for all of them
};

}  // namespace l7px::proxy::protocol
