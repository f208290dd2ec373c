package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/evmlb/evmlb/host/internal/gojs"
	"github.com/evmlb/evmlb/host/internal/jsrt"
	"github.com/evmlb/evmlb/host/internal/jsworld"
	"github.com/evmlb/evmlb/internal/contract"
)

// instance is one Go runtime with its event loop and JS world.
type instance struct {
	loop  *jsrt.Loop
	world *jsworld.World
	gort  *gojs.Runtime

	deadOnce sync.Once
	dead     chan struct{}
	deathErr error
}

func (i *instance) isDead() bool {
	select {
	case <-i.dead:
		return true
	default:
		return false
	}
}

// die marks the runtime dead (calls in flight fail) and stops the loop after the current task.
func (i *instance) die(err error) {
	i.deadOnce.Do(func() {
		i.deathErr = err
		close(i.dead)
		i.loop.Post(i.loop.Stop)
	})
}

// stop ends the runtime and waits for the loop to finish.
func (i *instance) stop() {
	i.die(errors.New("host stopped"))
	<-i.loop.Done()
}

// start starts a runtime and waits until Go is ready and speaks our contract version.
func (s *Server) start() (*instance, error) {
	inst := &instance{loop: jsrt.NewLoop(), dead: make(chan struct{})}
	inst.loop.OnPanic = func(v any) {
		s.logf("runtime failed: %v", v)
		inst.die(jsrt.PanicError(v))
	}
	go func() {
		inst.loop.Run()
		inst.die(errors.New("event loop stopped"))
		if inst.world != nil {
			inst.world.Close()
		}
		if inst.gort != nil {
			inst.gort.Close()
		}
	}()
	ready := make(chan error, 1)
	inst.loop.Post(func() {
		realm := jsrt.NewRealm(inst.loop, s.log)
		inst.world = jsworld.New(realm, jsworld.Config{Env: s.opts.Env, DB: s.db, Log: s.log, Client: s.opts.Client})
		gort, err := gojs.Start(context.Background(), s.wz, s.compiled, gojs.Options{
			Realm: realm,
			Log:   s.log,
			OnReady: func() {
				select { // a second ready() is ignored
				case ready <- s.checkVersion(inst.world):
				default:
				}
			},
			OnExit: func(err error) {
				s.logf("Go runtime exited: %v", err)
				inst.die(err)
				select {
				case ready <- fmt.Errorf("Go program exited before it was ready: %v", err):
				default:
				}
			},
		})
		inst.gort = gort
		if err != nil {
			ready <- err
		}
	})
	timeout := s.opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	var err error
	select {
	case err = <-ready:
	case <-time.After(timeout):
		err = errors.New("Go program did not call workers.ready")
	}
	if err == nil {
		err = inst.loop.Do(func() {
			if e := inst.world.ArmPersisted(); e != nil {
				s.logf("re-arming alarms: %v", e)
			}
		})
	}
	if err != nil {
		inst.stop()
		return nil, err
	}
	return inst, nil
}

// checkVersion compares binding.contractVersion with ours.
func (s *Server) checkVersion(w *jsworld.World) error {
	v := w.Binding().Get(contract.BindingContractVersion)
	if f, ok := v.(float64); ok && int(f) == contract.Version {
		return nil
	}
	return fmt.Errorf("%w: app.wasm implements host contract %s, this host %d",
		ErrContractVersion, jsrt.ToString(v), contract.Version)
}
