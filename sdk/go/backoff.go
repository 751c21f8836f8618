package l7px

import (
	"math/rand"
	"time"
)

// backoff is exponential with jitter: each delay is drawn from [b/2, b], where b starts at min
// and doubles up to max. Not safe for concurrent use (one per slot goroutine).
type backoff struct {
	min, max, next time.Duration
	rng            *rand.Rand
}

func newBackoff(min, max time.Duration, seed int64) *backoff {
	if min <= 0 {
		min = time.Millisecond
	}
	if max < min {
		max = min
	}
	return &backoff{min: min, max: max, next: min, rng: rand.New(rand.NewSource(seed))}
}

// Next returns the delay before the next attempt and advances the base.
func (b *backoff) Next() time.Duration {
	base := b.next
	b.next *= 2
	if b.next > b.max {
		b.next = b.max
	}
	half := base / 2
	return half + time.Duration(b.rng.Int63n(int64(base-half)+1))
}

// Reset starts over from min (after a slot served, or lived long enough).
func (b *backoff) Reset() { b.next = b.min }
