package durable

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/evmlb/evmlb/internal/adminapi"
	"github.com/evmlb/evmlb/internal/balance"
	"github.com/evmlb/evmlb/internal/blockref"
	"github.com/evmlb/evmlb/internal/healthcheck"
	"github.com/evmlb/evmlb/internal/jsonrpc"
	"github.com/evmlb/evmlb/internal/platform"
	"github.com/evmlb/evmlb/internal/protocol"
	"github.com/evmlb/evmlb/internal/retry"
	"github.com/evmlb/evmlb/internal/stats"
)

// Report is an upstream's health report to its chain.
type Report struct {
	Name    string      `json:"name"`
	At      time.Time   `json:"at"`
	Height  uint64      `json:"height"`
	ChainID uint64      `json:"chain_id,omitempty"`
	Syncing bool        `json:"syncing,omitempty"`
	Err     retry.Class `json:"error_class,omitempty"`
	// Status is the HTTP status of a failed check's answer (0: none came).
	Status int `json:"http_status,omitempty"`
	// Unserved: the head claimed at the previous check that the upstream could not serve; Proven: the head it
	// served (issue 8).
	Unserved uint64 `json:"unserved,omitempty"`
	Proven   uint64 `json:"proven,omitempty"`
	// Lacks is the block the chain asked for (ReportAnswer.Ask: its head floor) that the upstream answered null
	// for at this check (issue 17); 0: not asked, or it has it.
	Lacks uint64 `json:"lacks,omitempty"`
	// Ack is the sequence number of the last handover of counts (ReportAnswer.Seq) the upstream's object stored.
	Ack uint64 `json:"ack,omitempty"`
	// Finalized is the upstream's finalized block at this check (the "finalized" tag; 0: none; issue 19).
	Finalized uint64 `json:"finalized,omitempty"`
	// Replaced is the finalized block an earlier check of this upstream found that it now answers with another
	// hash, or null, at this check: the chain replaced a block the upstream had called final (0: none; issue 19).
	Replaced uint64 `json:"replaced,omitempty"`
	// StateProbes is what this check's state probe proved of how far back the upstream's state reaches (issue 20;
	// none when no probe was due): the chain learns it (applyProbes).
	StateProbes []StateProbe `json:"state_probes,omitempty"`
}

// StateProbe is what one read of a block's state, sent by a health check in a request of its own, proved:
// balance.Table.Learn's arguments for healthcheck.StateProbeMethod at Block.
type StateProbe struct {
	Block uint64      `json:"block"`
	Class retry.Class `json:"class"`
	Lack  retry.Lack  `json:"lack,omitempty"`
	At    time.Time   `json:"at"`
}

// takeProbes keeps the probes of rep until the table can judge them, and applies those it can (applyProbes). The
// caller holds o.mu.
func (o *chain) takeProbes(rep Report) []string {
	if len(rep.StateProbes) > 0 {
		if o.probes == nil {
			o.probes = map[string][]StateProbe{}
		}
		o.probes[rep.Name] = rep.StateProbes
	}
	return o.applyProbes()
}

// applyProbes learns the kept probes once the chain's best height is known (before, Learn could not tell an old
// block from a recent one, and would drop them), and returns the upstreams whose caps changed. The caller holds
// o.mu.
func (o *chain) applyProbes() []string {
	if o.table.Best() == 0 || len(o.probes) == 0 {
		return nil
	}
	var changed []string
	for _, name := range slices.Sorted(maps.Keys(o.probes)) {
		c := false
		for _, p := range o.probes[name] {
			ref := blockref.Ref{Kind: blockref.Number, Number: p.Block}
			c = o.table.Learn(name, healthcheck.StateProbeMethod, ref, p.Class, p.Lack, p.At) || c
		}
		if c {
			changed = append(changed, name)
		}
		delete(o.probes, name)
	}
	return changed
}

// row is the report as the table takes it.
func (r Report) row() balance.Report {
	return balance.Report{At: r.At, Height: r.Height, ChainID: r.ChainID, Syncing: r.Syncing, Unserved: r.Unserved, Proven: r.Proven, Lacks: r.Lacks, Finalized: r.Finalized, Replaced: r.Replaced, Err: r.Err, Status: r.Status}
}

// ReportAnswer is the chain's answer to a health report: the Worker isolates' per-method counts of the upstream
// since its last report, for its statistics.
type ReportAnswer struct {
	Methods map[string]stats.Counter `json:"methods,omitempty"`
	// Seq numbers the handover: the upstream's object stores the counts and Seq together and acknowledges Seq in
	// its next report. The chain keeps the counts until then, and hands them again (with what came since, under
	// the same Seq) when the report does not acknowledge them: an answer lost, or an object evicted before it
	// stored them, loses no counts, and none is counted twice.
	Seq uint64 `json:"seq,omitempty"`
	// Ask is a block the upstream's next check asks for (balance.Table.Ask: the chain's head floor, when the
	// upstream is far below it), so that a floor no upstream has is disproved; 0: none.
	Ask uint64 `json:"ask,omitempty"`
}

// Handover is counts handed to an upstream's object and not yet acknowledged (in the chain's storage, keyHanded,
// and in its /stats answer, ChainStats).
type Handover struct {
	Seq     uint64                   `json:"seq"`
	Methods map[string]stats.Counter `json:"methods"`
}

func (cs *Chains) report(w http.ResponseWriter, r *http.Request, o *chain, st platform.Storage, name string) {
	var rep Report
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
		jsonrpc.ErrInvalidRequest.With("report").Write(w, nil)
		return
	}
	o.mu.Lock()
	_, known := o.table.Get(rep.Name)
	var ans ReportAnswer
	saved := []string{rep.Name}
	if known {
		now, names := cs.env.P.Now(), []string{rep.Name}
		before := o.breakers(names, now)
		o.table.Report(rep.Name, rep.row())
		for _, n := range o.takeProbes(rep) {
			if n != rep.Name {
				saved = append(saved, n)
			}
		}
		ans.Ask = o.table.Ask(rep.Name)
		o.countTransitions(names, before, now)
		if hv := o.handed[rep.Name]; hv != nil && rep.Ack >= hv.Seq {
			delete(o.handed, rep.Name) // stored by the upstream's object
		}
		if s := o.stats[rep.Name]; len(s) > 0 || o.handed[rep.Name] != nil {
			hv := o.handed[rep.Name]
			if hv == nil {
				hv = &Handover{Methods: map[string]stats.Counter{}}
				o.handed[rep.Name] = hv
			}
			all := make(stats.Stats)
			for m, c := range hv.Methods {
				all.Add(m, c)
			}
			for m, c := range s {
				all.Add(m, *c)
			}
			hv.Seq = rep.Ack + 1
			hv.Methods = make(map[string]stats.Counter, len(all))
			for m, c := range all {
				hv.Methods[m] = *c
			}
			delete(o.stats, rep.Name)
			ans.Methods, ans.Seq = hv.Methods, hv.Seq
		}
	}
	o.mu.Unlock()
	if known {
		cs.saveRows(r.Context(), o, st, name, saved)
	}
	writeJSON(w, ans)
}

// sync stores the configured list, drops the rows and objects of upstreams no longer configured, and starts
// the health checks of the configured ones now.
func (cs *Chains) sync(w http.ResponseWriter, r *http.Request, o *chain, st platform.Storage, name string) {
	ctx := r.Context()
	names := cs.names(name)
	var old []string
	if v, ok, err := st.Get(ctx, keyUpstreams); err == nil && ok {
		_ = json.Unmarshal([]byte(v), &old)
	}
	var removed []string
	for _, n := range old {
		if !slices.Contains(names, n) {
			removed = append(removed, n)
		}
	}
	list, _ := json.Marshal(names)
	err := st.Put(ctx, map[string]string{keyUpstreams: string(list)})
	if err == nil && len(removed) > 0 {
		keys := make([]string, len(removed))
		for i, n := range removed {
			keys[i] = keyRowPrefix + n
		}
		err = st.Delete(ctx, keys...)
	}
	if err != nil {
		cs.env.P.Logf("chain %s: storage: %v", name, err)
		jsonrpc.ErrInternal.With("storage").Write(w, nil)
		return
	}
	o.mu.Lock()
	o.ensured = true
	o.table.SetUpstreams(names)
	cs.setArchive(o.table, name)
	o.mu.Unlock()
	cs.fanOut(ctx, name, removed, protocol.PathClear)
	cs.fanOut(ctx, name, names, protocol.PathStart)
	writeJSON(w, adminapi.SyncResult{Chain: name, Upstreams: names, Removed: removed})
}
