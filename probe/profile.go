package probe

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Profiles are the named probe intervals a peer can be given: fast for links
// whose failure must be noticed in well under a second, default for most,
// metered for links paid by the byte (LTE), where 44-byte probes every
// 250 ms (about 1.4 MB a day each way with headers) would show on the bill.
var Profiles = map[string]time.Duration{
	"fast":    100 * time.Millisecond,
	"default": 250 * time.Millisecond,
	"metered": 2 * time.Second,
}

// ProfileInterval returns the interval of the named profile; "" is
// "default".
func ProfileInterval(name string) (time.Duration, error) {
	if name == "" {
		name = "default"
	}
	if d, ok := Profiles[name]; ok {
		return d, nil
	}
	names := make([]string, 0, len(Profiles))
	for n := range Profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return 0, fmt.Errorf("probe: profile %q: want one of %s", name, strings.Join(names, ", "))
}
