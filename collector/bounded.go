package collector

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// One answer of a source must fit in the pod's memory whatever the source
// sends: an unaggregated query against a big Prometheus returns millions
// of series, and the client libraries read a body whole before decoding
// it. Bodies are cut at a byte limit while they are read, and decoded
// answers at a series (or queue) limit, each with an error that names the
// query and what came back, so the person reading it knows what to fix.

// Defaults of the answer bounds, sized for the shipped 128 MiB pod: a
// decoded series costs several times its bytes on the wire, the client's
// read buffer doubles as it fills, and two answers may be in flight (the
// tick's and the start-up check's). A query aggregated by service over a
// thousand services answers in a few hundred KiB.
const (
	DefaultMaxResponseBytes = 4 << 20
	DefaultMaxSeries        = 10000
)

// ErrAnswerTooLarge is wrapped by the error of an answer cut at the byte
// limit.
var ErrAnswerTooLarge = errors.New("answer too large")

// limitBody wraps a RoundTripper so every response body reads at most max
// bytes; the next read fails with ErrAnswerTooLarge. It sits above the
// transport's gzip handling, so the bound is on decompressed bytes.
type limitBody struct {
	next http.RoundTripper
	max  int64
}

func (l limitBody) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	resp.Body = &boundedBody{rc: resp.Body, left: l.max, max: l.max}
	return resp, nil
}

type boundedBody struct {
	rc   io.ReadCloser
	left int64
	max  int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly max from a longer one.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("%w: more than %s", ErrAnswerTooLarge, byteSize(b.max))
		}
		return b.rc.Read(p)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }

// byteSize prints a byte count for an error message.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
