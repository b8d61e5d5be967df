// Package archtest holds the import-graph rules of docs/architecture.md and
// a checker for them; its test runs the checker over `go list -deps` of the
// whole module, so a change that breaks the layering fails `make test`.
package archtest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Module is the module path.
const Module = "github.com/usrpt/usrpt"

// Package is the part of `go list -json` the rules need.
type Package struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Deps       []string
}

// Rule says what a package (and everything under it) may import from the
// module besides its own subtree, and whether it may import anything outside the standard library.
type Rule struct {
	Prefix  string   // module-relative, e.g. "poller"
	May     []string // module-relative prefixes it may import
	StdOnly bool     // no third-party dependencies at all (direct or not)
}

// Rules is the layering of ARCHITECTURE.md. A package under no rule's prefix
// is an error: new top-level packages must be placed in the graph.
var Rules = []Rule{
	{Prefix: "internal/ring"},
	{Prefix: "internal/hugemem"},
	{Prefix: "internal/sysfs"},
	{Prefix: "internal/archtest"},
	{Prefix: "internal/golden"}, // test helper: golden files
	{Prefix: "poller", May: []string{"internal/ring", "internal/sysfs", "poller"}},
	// The ioengine interface is standard library only (scsi uses it);
	// engines under it may use the internals.
	{Prefix: "ioengine", StdOnly: true},
	{Prefix: "ioengine/", May: []string{"internal/", "poller", "ioengine"}},
	// srp and scsi are protocol logic: standard library only; scsi may
	// execute through ioengine's interface (the root package, not engines).
	{Prefix: "srp", StdOnly: true},
	{Prefix: "scsi", May: []string{"ioengine", "scsi"}, StdOnly: true},
	{Prefix: "verbs", May: []string{"internal/", "poller", "verbs"}},
	{Prefix: "target", May: []string{"internal/", "poller", "srp", "scsi", "verbs", "ioengine", "target"}},
	{Prefix: "initiator", May: []string{"internal/", "poller", "srp", "scsi", "verbs", "initiator"}},
	{Prefix: "tuning", May: []string{"internal/", "tuning"}},
	{Prefix: "bench", May: []string{"internal/", "poller", "ioengine", "initiator", "srp", "scsi", "verbs", "target", "bench"}},
	{Prefix: "server", May: []string{"internal/", "poller", "ioengine", "srp", "scsi", "verbs", "target", "tuning", "server"}},
	{Prefix: "cmd", May: []string{""}},
}

func rel(path string) (string, bool) {
	if path == Module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, Module+"/")
	return r, ok
}

func under(p, prefix string) bool {
	if prefix == "" {
		return true
	}
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(p, prefix)
	}
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

func ruleFor(p string, rules []Rule) (Rule, bool) {
	best, found := Rule{}, false
	for _, r := range rules {
		if under(p, r.Prefix) && (!found || len(r.Prefix) > len(best.Prefix)) {
			best, found = r, true
		}
	}
	return best, found
}

// Check returns one message per violation, sorted.
func Check(pkgs []Package, rules []Rule) []string {
	std := map[string]bool{}
	for _, p := range pkgs {
		if p.Standard {
			std[p.ImportPath] = true
		}
	}
	var bad []string
	for _, p := range pkgs {
		me, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		rule, ok := ruleFor(me, rules)
		if !ok {
			bad = append(bad, fmt.Sprintf("%s: not placed in the layer graph (add a rule in internal/archtest)", me))
			continue
		}
		for _, imp := range p.Imports {
			other, inModule := rel(imp)
			if !inModule {
				if rule.StdOnly && !std[imp] {
					bad = append(bad, fmt.Sprintf("%s imports %s: %s may use the standard library only", me, imp, rule.Prefix))
				}
				continue
			}
			if under(other, rule.Prefix) {
				continue // a package may always use its own subpackages
			}
			if !slices.ContainsFunc(rule.May, func(pre string) bool { return under(other, pre) }) {
				bad = append(bad, fmt.Sprintf("%s imports %s: %s may import only %v", me, other, rule.Prefix, rule.May))
			}
		}
		if rule.StdOnly {
			for _, d := range p.Deps {
				if _, inModule := rel(d); !inModule && !std[d] && !slices.Contains(p.Imports, d) {
					bad = append(bad, fmt.Sprintf("%s depends on %s indirectly: %s may use the standard library only", me, d, rule.Prefix))
				}
			}
		}
	}
	sort.Strings(bad)
	return slices.Compact(bad)
}
