package probe

// State is a peer's link state.
type State int

const (
	// Down: the link is not to be used (the initial state).
	Down State = iota
	// Up: the link is to be used.
	Up
)

// String returns "down" or "up".
func (s State) String() string {
	switch s {
	case Down:
		return "down"
	case Up:
		return "up"
	}
	return "unknown"
}
