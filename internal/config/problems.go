package config

import (
	"errors"
	"strconv"
	"strings"
)

// Problem is one thing wrong with the configuration. Path says where: a JSON path into UPSTREAM_CONFIG ("$" for
// the whole text, "$.upstreams[2].upstream", "$.chains.ethereum.max_lag_blocks"), or the name of an EVMLB_*
// variable. Msg says what, as a rule ("must be an integer from 1 to 10000"). Neither ever quotes a value: a key is
// shown in a path only once it is known to be a chain name.
type Problem struct {
	Path string
	Msg  string
	// text is the error the balancer itself answers with (-32066) when this is the first problem, unchanged from
	// the single-error parser ("UPSTREAM_CONFIG: upstreams entry 2: field \"upstream\" must be …").
	text string
}

// String is "path: msg".
func (p Problem) String() string { return p.Path + ": " + p.Msg }

// Err is the problem as the balancer reports it (Parse's and LoadSettings' error).
func (p Problem) Err() error { return errors.New(p.text) }

// problems collects Problems in the order the single-error parser would have met them, so that the first is
// always the error Parse returns.
type problems []Problem

// add records a problem at path; where is the legacy location ("entry 0", "chains \"eth\"", or "" for none) and
// msg the rule, as the legacy message words them ("field \"name\" is missing").
func (ps *problems) add(path, where, pathMsg, legacyMsg string) {
	text := EnvUpstreams + ": " + legacyMsg
	if where != "" {
		text = EnvUpstreams + ": " + where + ": " + legacyMsg
	}
	*ps = append(*ps, Problem{Path: path, Msg: pathMsg, text: text})
}

// field records a problem with the field key of the entry at path: its path is path.key, and its message the
// legacy `field "key" <rule>`.
func (ps *problems) field(path, where, key, rule string) {
	ps.add(path+"."+key, where, rule, "field "+strconv.Quote(key)+" "+rule)
}

// SourceDefault is Load's source when UPSTREAM_CONFIG is unset or blank.
const SourceDefault = "embedded default"

// Load reads the whole configuration through getenv, as the balancer does when it starts and as `evmlb validate`
// checks it: UPSTREAM_CONFIG (Default when unset or blank; source then says SourceDefault, else EnvUpstreams) and
// the EVMLB_* settings. It returns every problem, the upstream list's first; c is nil when there are any.
func Load(getenv func(string) string) (c *Config, s Settings, source string, ps []Problem) {
	text, source := getenv(EnvUpstreams), EnvUpstreams
	if strings.TrimSpace(text) == "" {
		text, source = Default, SourceDefault
	}
	c, ps = ParseAll(text)
	s, sps := LoadSettingsAll(getenv)
	ps = append(ps, sps...)
	if len(ps) > 0 {
		c = nil
	}
	return c, s, source, ps
}
