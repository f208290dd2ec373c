package budget

import "time"

// A placeholder of the Allocator's API (issue 22), so that the budget object builds before the core part lands
// the allocator: this file is replaced by allocator.go at the merge. It grants every asker the whole rate.

// Allocator is a budget object's memory: the isolates' leases and the day's count.
type Allocator struct {
	day  string
	used uint64
}

// NewAllocator makes an empty allocator.
func NewAllocator() *Allocator { return &Allocator{} }

// Lease answers an isolate's ask at now under the limit lim.
func (a *Allocator) Lease(now time.Time, lim Limit, ask Ask) Grant {
	if d := now.UTC().Format(time.DateOnly); d != a.day {
		a.day, a.used = d, 0
	}
	a.used += ask.Used
	return Grant{Rate: lim.RPS, Burst: lim.Burst, Until: now.Add(LeaseTTL).UnixMilli(), Left: -1}
}

// Status is the allocator's view at now, for /admin/clients.
func (a *Allocator) Status(now time.Time, name string) Status {
	return Status{Name: name, Day: a.day, DayUsed: a.used}
}

// Day is the UTC day counted ("YYYY-MM-DD", "" before any) and how many were used in it.
func (a *Allocator) Day() (day string, used uint64) { return a.day, a.used }

// Restore sets the day's count, as stored.
func (a *Allocator) Restore(day string, used uint64) { a.day, a.used = day, used }
