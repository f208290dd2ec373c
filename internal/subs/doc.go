// Package subs is the pure core of eth_subscribe at the edge (issue 21): the session protocol of one WebSocket
// (eth_subscribe / eth_unsubscribe for newHeads and logs, as go-ethereum takes and answers them; every other call
// handed back as a plain call), geth's log filter, and the follower that turns the chain's verified head into
// newHeads and logs events, every height once and in order, reorgs included.
//
// It does no I/O, starts no goroutine and reads no clock: its callers fetch what a Plan asks, pass the answers
// in, and persist what it hands back. Everything that must outlive a call (a Socket's subscriptions, the
// follower's State) is a plain JSON value with a stated bound, so that a Durable Object evicted between alarms,
// or a hibernated WebSocket's attachment, holds all of it.
package subs
