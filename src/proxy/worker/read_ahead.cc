// Worker::Loop, part of loop.h: responses read ahead of their clients (pool.response_buffer).
// A slow client then holds l7px's memory, not one of the service's slots: the slot goes back
// to the pool as soon as the whole response is here.
//
// Invariants (stream.h ReadAhead):
//  - Only pass-through responses are read ahead (the client gets the bytes as the service sent
//    them after the head), so the bytes the client gets are exactly the message's bytes.
//  - a.sent <= a.end <= a.rx; chunks hold every byte in [first * size, rx), and a chunk is
//    returned once every byte of it was sent.
//  - At most one client send per stream: [sent, sent + inflight), within one chunk.
//  - ahead_chunks_ counts every chunk held by a stream reading ahead; a new chunk is taken only
//    within server.response_buffer_memory, else the response goes on at the client's pace.
#include "proxy/worker/loop.h"

namespace l7px::proxy {

bool Worker::Loop::ReadAheadFits(const Stream& s) const {
  const uint64_t limit = s.request.limits.response_buffer;
  const http::MessageHead& head = s.resp.head();
  if (limit == 0 || s.upstream.decode_body || head.status == 101 || !s.request.sent) return false;
  return head.framing != http::Framing::kContentLength || head.content_length <= limit;
}

void Worker::Loop::StartReadAhead(Stream& s) {
  ReadAhead& a = s.ahead;
  a.on = true;
  a.sending = false;
  a.chunks.clear();
  a.chunks.push_back(s.resp_buf);  // the chunks own it now; resp_buf is the one being sent
  ++ahead_chunks_;
  PublishReadAheadBytes();
  a.first = 0;
  a.rx = s.resp_len;
  a.sent = a.end = s.resp_scan;  // the head is in s.out, written by the protocol
  a.inflight = 0;
  if (!ParseAhead(s, s.resp_buf, s.resp_scan, s.resp_len - s.resp_scan)) return;
  PumpReadAhead(s);
}

bool Worker::Loop::ParseAhead(Stream& s, char* chunk, uint32_t off, uint32_t len) {
  if (s.upstream.done) {
    if (len > 0) s.upstream.unusable = true;  // bytes beyond the response
    return true;
  }
  const auto r = s.resp.Parse(chunk + off, len);
  if (r.status == http::Parser::Status::kError) {
    if (!s.request.response_started) {  // nothing went out yet: the client gets a 502
      BadResponse(s, http::ErrorName(s.resp.error()));
      return false;
    }
    // The head went out already: the client must see the response broken.
    L7PX_LOG_LIMITED(kWarn, "pool {}: malformed response body from {} ({})", s.request.pool->name(),
                     s.upstream.slot->service_id(), http::ErrorName(s.resp.error()));
    KillSlot(s);
    s.conn->protocol->Abort(s);
    return false;
  }
  s.ahead.end += r.consumed;
  if (r.status == http::Parser::Status::kMessageDone) {
    s.upstream.done = true;
    if (r.consumed < len) s.upstream.unusable = true;  // bytes beyond the response
  }
  return true;
}

void Worker::Loop::PumpReadAhead(Stream& s) {
  ReadAhead& a = s.ahead;
  const uint64_t size = resp_pool_.size();
  // The whole response is here: the slot goes back now, whatever the client's pace.
  if (s.upstream.done && !s.upstream.released) ReleaseUpstream(s);
  // Read on while the response held here stays within response_buffer.
  if (!s.upstream.done && s.upstream.slot != nullptr && !s.upstream.dead && !s.upstream.recv_busy &&
      a.rx - a.sent < s.request.limits.response_buffer) {
    const uint64_t chunk = a.rx / size;
    if (chunk - a.first == a.chunks.size()) {
      if (a.chunks.size() == 1 && (a.first + 1) * size <= a.sent) {
        ++a.first;  // the one chunk went out whole: it takes the next bytes (no budget needed)
      } else if ((ahead_chunks_ + 1) * size <= limits_->response_buffer_memory) {
        a.chunks.push_back(resp_pool_.Get());  // no allocation: the vector keeps its capacity
        ++ahead_chunks_;
        PublishReadAheadBytes();
      }
    }
    if (chunk - a.first < a.chunks.size()) {
      const uint32_t off = static_cast<uint32_t>(a.rx % size);
      AckSlotNow(s);  // part of the response is here: acknowledge it at once (AckSlotNow)
      io_uring_sqe* sqe = ring_.Sqe();
      io_uring_prep_recv(sqe, s.upstream.slot->fd(), a.chunks[chunk - a.first] + off,
                         static_cast<uint32_t>(size) - off, 0);
      io_uring_sqe_set_data64(sqe, TagOf(kOpSlotRecv, s));
      s.upstream.recv_busy = true;
      SlotOpStarted(s);
    }
    // else: out of budget; the next read waits for the client to take a chunk (AheadSent)
  }
  // Send what is here (within one chunk), or the head alone.
  if (!a.sending) {
    const uint64_t chunk_end = (a.sent / size + 1) * size;
    const uint64_t n = std::min(a.end, chunk_end) - a.sent;
    if (n > 0 || s.out_len > s.out_sent) {
      s.resp_buf = a.chunks[a.sent / size - a.first];
      s.fwd_off = static_cast<uint32_t>(a.sent % size);
      s.fwd_len = static_cast<uint32_t>(n);
      a.inflight = n;
      a.sending = true;
      s.conn->protocol->SendResponse(s);
      return;
    }
  }
  if (s.upstream.done && !a.sending && a.sent == a.end) MaybeFinishExchange(s);
}

void Worker::Loop::OnAheadRecv(Stream& s, int res) {
  ReadAhead& a = s.ahead;
  if (res <= 0) {
    if (res == 0 && !s.upstream.done && s.resp.head().framing == http::Framing::kUntilClose) {
      // A close-delimited body ends here.
      s.upstream.unusable = true;
      if (s.resp.Finish().status == http::Parser::Status::kMessageDone) {
        s.upstream.done = true;
        PumpReadAhead(s);
        return;
      }
    }
    OnSlotFailure(s, res);
    return;
  }
  const uint64_t size = resp_pool_.size();
  char* chunk = a.chunks[a.rx / size - a.first];
  const auto off = static_cast<uint32_t>(a.rx % size);
  a.rx += static_cast<uint32_t>(res);
  TimeService(s);  // silence, per read
  if (!ParseAhead(s, chunk, off, static_cast<uint32_t>(res))) return;
  PumpReadAhead(s);
}

void Worker::Loop::AheadSent(Stream& s) {
  ReadAhead& a = s.ahead;
  const uint64_t size = resp_pool_.size();
  a.sending = false;
  a.sent += a.inflight;
  a.inflight = 0;
  // Chunks every byte of which went out go back to the pool (never the one receiving).
  while ((a.first + 1) * size <= a.sent && a.chunks.size() > 1) {
    resp_pool_.Put(a.chunks.front());
    a.chunks.erase(a.chunks.begin());
    ++a.first;
    --ahead_chunks_;
  }
  PublishReadAheadBytes();
  if (!s.upstream.done && s.upstream.slot != nullptr) TimeService(s);
  PumpReadAhead(s);
}

void Worker::Loop::DropReadAhead(Stream& s) {
  ReadAhead& a = s.ahead;
  if (!a.on) return;
  for (char* chunk : a.chunks) resp_pool_.Put(chunk);
  ahead_chunks_ -= a.chunks.size();
  PublishReadAheadBytes();
  a.chunks.clear();
  a.on = a.sending = false;
  s.resp_buf = nullptr;  // it was one of the chunks
  s.fwd_off = s.fwd_len = 0;
}

void Worker::Loop::PublishReadAheadBytes() {
  stats_->response_buffer_bytes.store(static_cast<int64_t>(ahead_chunks_ * resp_pool_.size()),
                                      std::memory_order_relaxed);
}

}  // namespace l7px::proxy
