package config

import (
	"regexp"
	"strings"
)

// DefaultDenyMethods are the methods the balancer refuses unless EVMLB_DENY_METHODS or a chain's deny_methods
// says otherwise. A pattern is a method name, or a prefix followed by "*". They are the methods that administer or
// reconfigure a provider's node (admin_, miner_, clique_, engine_, debug_ setters, profilers and database
// access) and those that would make a provider sign with keys it holds (personal_, eth_sign…,
// eth_sendTransaction), and the dev-node families that rewrite a test chain at will (evm_, anvil_, hardhat_,
// ganache_: mine, set balances, impersonate, revert to snapshots): no client of a public balancer has a business
// calling any of them; a devnet chain allows the last through its own deny_methods. Reads stay allowed:
// txpool_*, eth_accounts and the debug_trace* family are not on the list. RATIONALE.md has the reasoning.
var DefaultDenyMethods = []string{
	"admin_*",
	"personal_*",
	"miner_*",
	"clique_*",
	"engine_*",
	"debug_setHead",
	"debug_setGCPercent",
	"debug_setBlockProfileRate",
	"debug_setMutexProfileFraction",
	"debug_setTrieFlushInterval",
	"debug_startCPUProfile",
	"debug_stopCPUProfile",
	"debug_cpuProfile",
	"debug_startGoTrace",
	"debug_stopGoTrace",
	"debug_goTrace",
	"debug_blockProfile",
	"debug_mutexProfile",
	"debug_writeBlockProfile",
	"debug_writeMemProfile",
	"debug_writeMutexProfile",
	"debug_verbosity",
	"debug_vmodule",
	"debug_freeOSMemory",
	"debug_chaindbCompact",
	"debug_dbAncient*",
	"debug_dbGet",
	"eth_sign",
	"eth_signTransaction",
	"eth_signTypedData*",
	"eth_sendTransaction",
	"evm_*",
	"anvil_*",
	"hardhat_*",
	"ganache_*",
}

// patternRE is a deny pattern: 1 to 100 of [A-Za-z0-9_], optionally followed by one "*".
var patternRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,100}\*?$`)

// ValidPattern reports whether p is a deny pattern: 1 to 100 of A-Z a-z 0-9 _, optionally ending in "*".
func ValidPattern(p string) bool { return patternRE.MatchString(p) }

// MatchMethod reports whether method matches one of patterns. A pattern ending in "*" matches every method it
// prefixes; any other pattern matches the method of that name. Letters compare without regard to ASCII case, so
// "Admin_Peers" cannot slip past "admin_*" to a node that looks methods up leniently.
func MatchMethod(patterns []string, method string) bool {
	for _, p := range patterns {
		if prefix, wild := strings.CutSuffix(p, "*"); wild {
			if len(method) >= len(prefix) && asciiEqualFold(method[:len(prefix)], prefix) {
				return true
			}
		} else if asciiEqualFold(method, p) {
			return true
		}
	}
	return false
}

// asciiEqualFold is strings.EqualFold restricted to ASCII: unlike EqualFold it never equates a non-ASCII rune
// (the Kelvin sign) with an ASCII letter, and it compares bytes, so a prefix cut in the middle of a rune is fine.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// DenyList returns the deny patterns in force on chain: the chain's deny_methods when set (an empty list denies
// nothing), else s.DenyMethods (EVMLB_DENY_METHODS), else DefaultDenyMethods when that is nil too.
func (c *Config) DenyList(s Settings, chain string) []string {
	if d := c.ChainSettings(chain).DenyMethods; d != nil {
		return d
	}
	if s.DenyMethods != nil {
		return s.DenyMethods
	}
	return DefaultDenyMethods
}

// Denied reports whether the balancer refuses method on chain (see DenyList and MatchMethod).
func (c *Config) Denied(s Settings, chain, method string) bool {
	return MatchMethod(c.DenyList(s, chain), method)
}
