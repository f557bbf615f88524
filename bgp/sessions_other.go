//go:build !linux

package bgp

import "errors"

// closeSessions is only implemented on Linux; elsewhere Run stops with a
// Cease and neighbours flush our routes.
func closeSessions([]session) (int, error) {
	return 0, errors.New("closing sessions without a NOTIFICATION is only implemented on Linux")
}
