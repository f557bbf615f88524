// Package apitest holds test helpers for the API and its clients: an
// in-memory Source and a goroutine leak check. It is imported only by tests.
package apitest
