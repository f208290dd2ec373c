// Package anvil starts a real anvil node (Foundry's EVM dev node) on a random
// loopback port for the end-to-end tests, mines blocks on demand, and stops it.
package anvil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/procutil"
	"github.com/evmlb/evmlb/e2e/internal/repo"
	"github.com/evmlb/evmlb/e2e/internal/rpc"
)

// EnvBinary names the environment variable that overrides the anvil binary.
const EnvBinary = "EVMLB_ANVIL"

// DevKey is the private key (hex, no 0x) of anvil's first default dev account,
// DevAddress. It is public test data: anvil derives it from its default mnemonic.
const (
	DevKey     = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
	DevAddress = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
)

// Binary returns the anvil binary to run: $EVMLB_ANVIL when set, else the one
// the npm package @foundry-rs/anvil ships under the repository's node_modules.
// It fails when the file does not exist.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if !repo.Exists(p) {
			return "", fmt.Errorf("%s=%s: no such file", EnvBinary, p)
		}
		return p, nil
	}
	p, err := repo.Path("node_modules", "@foundry-rs", "anvil-linux-amd64", "bin", "anvil")
	if err != nil {
		return "", err
	}
	if !repo.Exists(p) {
		return "", fmt.Errorf("anvil not found at %s (run npm ci in the repository root, or set %s)", p, EnvBinary)
	}
	return p, nil
}

// Node is one running anvil.
type Node struct {
	// URL is the node's HTTP JSON-RPC endpoint, http://127.0.0.1:PORT.
	URL string
	// ChainID is the chain id the node was started with.
	ChainID uint64

	proc *procutil.Proc
}

// Options choose how a node starts.
type Options struct {
	// ChainID is passed as --chain-id; 0 means anvil's default, 31337.
	ChainID uint64
	// Args are extra command-line arguments.
	Args []string
}

var listening = regexp.MustCompile(`Listening on 127\.0\.0\.1:(\d+)`)

// Start runs anvil on 127.0.0.1 with a port the kernel picks, waits until it
// answers eth_chainId, and returns it. The caller must call Stop.
func Start(ctx context.Context, opts Options) (*Node, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if opts.ChainID == 0 {
		opts.ChainID = 31337
	}
	args := append([]string{
		"--host", "127.0.0.1", "--port", "0",
		"--chain-id", strconv.FormatUint(opts.ChainID, 10),
	}, opts.Args...)
	proc, err := procutil.Start(exec.Command(bin, args...))
	if err != nil {
		return nil, fmt.Errorf("starting anvil: %w", err)
	}
	n := &Node{ChainID: opts.ChainID, proc: proc}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := proc.Logs.WaitMatch(ctx, listening, proc.Exited())
	if err != nil {
		n.Stop()
		return nil, fmt.Errorf("anvil did not start: %w\n%s", err, proc.Logs)
	}
	n.URL = "http://127.0.0.1:" + m[1]
	if err := n.waitReady(ctx); err != nil {
		n.Stop()
		return nil, fmt.Errorf("anvil at %s: %w\n%s", n.URL, err, proc.Logs)
	}
	return n, nil
}

// StartT starts a node with the given chain id and stops it in t.Cleanup. It
// calls t.Fatal when anvil cannot start.
func StartT(t testing.TB, chainID uint64) *Node {
	t.Helper()
	return StartTWith(t, Options{ChainID: chainID})
}

// StartTWith starts a node with opts (extra arguments: opts.Args, e.g. "--slots-in-an-epoch", "1", which makes
// anvil's "finalized" block its head minus 2) and stops it in t.Cleanup. It calls t.Fatal when anvil cannot start.
func StartTWith(t testing.TB, opts Options) *Node {
	t.Helper()
	n, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

// waitReady polls eth_chainId until the node answers with its chain id.
func (n *Node) waitReady(ctx context.Context) error {
	for {
		id, err := n.Quantity(ctx, "eth_chainId")
		if err == nil {
			if id != n.ChainID {
				return fmt.Errorf("eth_chainId = %d, want %d", id, n.ChainID)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not answering: %w (last error: %v)", ctx.Err(), err)
		case <-n.proc.Exited():
			return errors.New("exited")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop kills the node and waits for it. It is safe to call more than once.
func (n *Node) Stop() { n.proc.Stop(5 * time.Second) }

// Logs returns the node's output so far.
func (n *Node) Logs() string { return n.proc.Logs.String() }

// Call sends one JSON-RPC request to the node and returns its raw result.
func (n *Node) Call(ctx context.Context, method string, params ...any) (json.RawMessage, error) {
	return rpc.Call(ctx, http.DefaultClient, n.URL, method, params...)
}

// Quantity calls a method whose result is a hex quantity and decodes it.
func (n *Node) Quantity(ctx context.Context, method string, params ...any) (uint64, error) {
	raw, err := n.Call(ctx, method, params...)
	if err != nil {
		return 0, err
	}
	return rpc.Quantity(raw)
}

// BlockNumber returns the node's head.
func (n *Node) BlockNumber(ctx context.Context) (uint64, error) {
	return n.Quantity(ctx, "eth_blockNumber")
}

// Mine mines blocks new blocks at once (anvil_mine) and returns the new head.
func (n *Node) Mine(ctx context.Context, blocks uint64) (uint64, error) {
	if blocks > 0 {
		if _, err := n.Call(ctx, "anvil_mine", rpc.Hex(blocks)); err != nil {
			return 0, fmt.Errorf("anvil_mine %d: %w", blocks, err)
		}
	}
	return n.BlockNumber(ctx)
}

// MineTo mines until the head is at least height and returns the head.
func (n *Node) MineTo(ctx context.Context, height uint64) (uint64, error) {
	head, err := n.BlockNumber(ctx)
	if err != nil || head >= height {
		return head, err
	}
	return n.Mine(ctx, height-head)
}

// LogsCode is the runtime bytecode of a contract that emits logs on demand (issue 20's eth_getLogs over any
// range): called with one 32-byte word n as calldata, it emits n logs LOG2(topic0 0xe2e2, topic1 i, no data) for
// i = 0 … n-1 and stops. Install it with anvil_setCode. Written by hand:
//
//	00 6000    PUSH1 0
//	02 35      CALLDATALOAD      n
//	03 6000    PUSH1 0           i                       stack: n i
//	05 5b      JUMPDEST          loop:
//	06 8181    DUP2 DUP2                                 n i n i
//	08 1015    LT ISZERO         i >= n                  n i done
//	0a 601b    PUSH1 0x1b
//	0c 57      JUMPI             done: to the end        n i
//	0d 80      DUP1              topic1 = i              n i i
//	0e 61e2e2  PUSH2 0xe2e2      topic0                  n i i 0xe2e2
//	11 600080  PUSH1 0 DUP1      size 0, offset 0        n i i 0xe2e2 0 0
//	14 a2      LOG2                                      n i
//	15 600101  PUSH1 1 ADD                               n i+1
//	18 600556  PUSH1 5 JUMP      to loop
//	1b 5b00    JUMPDEST STOP
const LogsCode = "0x6000356000" + "5b" + "8181" + "1015" + "601b" + "57" + "80" + "61e2e2" + "600080" + "a2" + "600101" + "600556" + "5b00"
