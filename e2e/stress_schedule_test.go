package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/evmlb/evmlb/e2e/internal/faultproxy"
)

// The stress test's fault schedule. Each chain's three upstreams go through the same table of phases, each chain
// at its own offset; a phase gives every upstream a mode. Every phase keeps at least one upstream in mode "pass",
// and a phase change applies the modes that heal before those that break, so that at every moment each chain has
// at least one upstream that answers at once.

// stressMode is how one upstream behaves during a phase.
type stressMode struct {
	name  string
	kind  faultproxy.Kind // the fault (Pass for none)
	delay time.Duration   // added before every answer
	flap  bool            // the fault goes on and off every 1 to 2 s (starting on)
}

// The modes, for an attempt timeout of 500 ms (stressAttemptTimeout).
var stressModes = map[string]stressMode{
	"pass":     {name: "pass", kind: faultproxy.Pass},
	"hang":     {name: "hang", kind: faultproxy.Hang},                                   // reads the request, never answers
	"slow700":  {name: "slow700", kind: faultproxy.Pass, delay: 700 * time.Millisecond}, // over the attempt timeout
	"slow300":  {name: "slow300", kind: faultproxy.Pass, delay: 300 * time.Millisecond}, // under it: slow but answers
	"429":      {name: "429", kind: faultproxy.HTTP429},
	"500":      {name: "500", kind: faultproxy.HTTP500},
	"flap500":  {name: "flap500", kind: faultproxy.HTTP500, flap: true},
	"flaphang": {name: "flaphang", kind: faultproxy.Hang, flap: true},
	"flap429":  {name: "flap429", kind: faultproxy.HTTP429, flap: true},
}

// stressPhases is the table of phases: one mode per upstream (u0, u1, u2), at least one "pass" in each.
var stressPhases = [][3]string{
	{"pass", "hang", "slow700"},
	{"slow300", "pass", "500"},
	{"429", "flap500", "pass"},
	{"pass", "flaphang", "429"},
	{"hang", "pass", "flap429"},
	{"500", "slow700", "pass"},
	{"flaphang", "pass", "hang"},
	{"pass", "429", "slow300"},
}

// stressPhaseLength is how long one phase lasts.
const stressPhaseLength = 2500 * time.Millisecond

// upstreamCtl switches the mode of one fault proxy, running its flapping when the mode flaps.
type upstreamCtl struct {
	p    *faultproxy.Proxy
	mode string

	stopFlap context.CancelFunc
	flapDone chan struct{}
}

// set switches to mode m, stopping any flapping first.
func (u *upstreamCtl) set(m stressMode, seed uint64) error {
	if u.stopFlap != nil {
		u.stopFlap()
		<-u.flapDone
		u.stopFlap, u.flapDone = nil, nil
	}
	u.mode = m.name
	if m.kind == faultproxy.Pass {
		// Heal first, then set the delay (a slow mode's answers are right).
		if err := u.p.SetFault(faultproxy.Pass); err != nil {
			return err
		}
		u.p.SetDelay(m.delay)
		return nil
	}
	if err := u.p.SetFault(m.kind); err != nil {
		return err
	}
	u.p.SetDelay(m.delay)
	if m.flap {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		u.stopFlap, u.flapDone = cancel, done
		go func() {
			defer close(done)
			rng := rand.New(rand.NewPCG(seed, 7))
			on := true
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second + time.Duration(rng.Int64N(int64(time.Second)))):
				}
				on = !on
				k := faultproxy.Pass
				if on {
					k = m.kind
				}
				_ = u.p.SetFault(k)
			}
		}()
	}
	return nil
}

// schedule drives the faults of every chain's upstreams, phase after phase, until stop.
type schedule struct {
	mu     sync.Mutex
	chains []*stressChain
	phase  int
	log    []string  // what was switched, when (for the report)
	start  time.Time // set before run, read by everyone
}

// apply puts every chain in phase i: modes that heal first, then those that break.
func (sc *schedule) apply(i int) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.phase = i
	for heal := range 2 {
		for _, c := range sc.chains {
			modes := stressPhases[(i+c.phaseOffset)%len(stressPhases)]
			for j, u := range c.ctl {
				m := stressModes[modes[j]]
				if (m.name == "pass") != (heal == 0) || u.mode == m.name {
					continue
				}
				if err := u.set(m, uint64(i*100+j)); err != nil {
					return fmt.Errorf("%s/u%d → %s: %w", c.name, j, m.name, err)
				}
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%6.1fs phase %d:", time.Since(sc.start).Seconds(), i)
	for _, c := range sc.chains {
		fmt.Fprintf(&b, " %s %s", c.name, strings.Join(sc.modesLocked(c), ","))
	}
	sc.log = append(sc.log, b.String())
	return nil
}

func (sc *schedule) modesLocked(c *stressChain) []string {
	var out []string
	for _, u := range c.ctl {
		out = append(out, u.mode)
	}
	return out
}

// modes is what chain c's upstreams do now, and the phase.
func (sc *schedule) modes(c *stressChain) (int, []string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.phase, sc.modesLocked(c)
}

// run applies phase after phase until ctx ends, then heals every upstream. sc.start must be set.
func (sc *schedule) run(ctx context.Context) error {
	tick := time.NewTicker(stressPhaseLength)
	defer tick.Stop()
	for i := 0; ; i++ {
		if err := sc.apply(i); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return sc.healAll()
		case <-tick.C:
		}
	}
}

// healAll stops every fault.
func (sc *schedule) healAll() error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, c := range sc.chains {
		for _, u := range c.ctl {
			if err := u.set(stressModes["pass"], 0); err != nil {
				return err
			}
		}
	}
	return nil
}
