package app

import (
	"strings"
	"testing"

	"github.com/evmlb/evmlb/internal/budget"
	"github.com/evmlb/evmlb/internal/contract"
	"github.com/evmlb/evmlb/internal/evmtest"
	"github.com/evmlb/evmlb/internal/platform/memplatform"
	"github.com/evmlb/evmlb/internal/protocol"
)

// The App serves the budget objects (role budget, issue 22): a lease of a budget its configuration does not have
// is refused 404, its status answered; with a malformed configuration every call gets ErrConfig, as the other
// objects' do; budget objects set no alarm.
func TestBudgetRole(t *testing.T) {
	h := newHarness(t, nil, upstream{"eth", "a", "https://a.example/v3/" + evmtest.Secret})
	c := protocol.Client{P: h.host.Platform()}
	name := budget.ClientName("nobody")
	if _, err := c.Budget(t.Context(), budget.Ask{Name: name, Isolate: "i1", Demand: 1}); err == nil ||
		!strings.Contains(err.Error(), "HTTP 404") || !strings.Contains(err.Error(), "no such budget") {
		t.Fatalf("a budget not configured: %v", err)
	}
	if st, err := c.BudgetStatus(t.Context(), name); err != nil || st.Name != name {
		t.Fatalf("status: %+v %v", st, err)
	}
	if err := h.app.Alarm(t.Context(), contract.RoleBudget, memplatform.ObjectID(contract.RoleBudget, name), 0); err != nil {
		t.Fatalf("a budget object's alarm: %v", err)
	}

	broken := startHarness(t, map[string]string{"UPSTREAM_CONFIG": `[{"chain":"eth"}]`, "ADMIN_PASSWORD": password})
	c = protocol.Client{P: broken.host.Platform()}
	if _, err := c.Budget(t.Context(), budget.Ask{Name: name, Isolate: "i1"}); err == nil ||
		!strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), "-32066") {
		t.Fatalf("with a malformed configuration: %v", err)
	}
}
