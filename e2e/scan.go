package e2e

import (
	"context"
	"net"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/ethclient"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/gorilla/websocket"
)

// wsDialer is a WebSocket dialer whose connections are read through the scenario's secret scan: every byte the
// balancer sends on them (the upgrade's answer, each frame, a close frame's reason) is checked for the scenario's
// secrets as it arrives. A server's frames are not masked, and the dialer asks for no compression, so a secret
// the balancer sends in a frame is in the bytes as it is (a secret split between two frames of one fragmented
// message would not be seen; the balancer sends each message in one frame).
func (s *S) wsDialer() *websocket.Dialer {
	return scanDialer(s.longestSecret, func(b []byte) { s.checkNoSecret("a WebSocket message from the balancer", b) })
}

// scanDialer is a WebSocket dialer that passes what is read from each connection to check, in reads that overlap
// by longest()-1 bytes.
func scanDialer(longest func() int, check func([]byte)) *websocket.Dialer {
	d := *websocket.DefaultDialer
	d.EnableCompression = false
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &scanConn{Conn: c, longest: longest, check: check}, nil
	}
	return &d
}

// ethclient dials url with go-ethereum's client as a user would, the answers scanned for secrets: over
// WebSocket through wsDialer, over HTTP through the scenario's client.
func (s *S) ethclient(ctx context.Context, url string) (*ethclient.Client, error) {
	opt := gethrpc.WithHTTPClient(s.client)
	if strings.HasPrefix(url, "ws") {
		opt = gethrpc.WithWebsocketDialer(*s.wsDialer())
	}
	c, err := gethrpc.DialOptions(ctx, url, opt)
	if err != nil {
		return nil, err
	}
	return ethclient.NewClient(c), nil
}

// scanConn passes what is read from a connection to check, with the last bytes of the read before, so that a
// secret split between two reads is found.
type scanConn struct {
	net.Conn
	longest func() int
	check   func([]byte)
	mu      sync.Mutex
	tail    []byte
}

func (c *scanConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		buf := append(c.tail, p[:n]...)
		c.check(buf)
		// Less than the longest secret: a secret found once is not found again in the next read's tail.
		keep := min(len(buf), max(c.longest()-1, 0))
		c.tail = append(c.tail[:0:0], buf[len(buf)-keep:]...)
		c.mu.Unlock()
	}
	return n, err
}
