package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxTokenBytes bounds a token file, as roamd does.
const maxTokenBytes = 4096

// token is the bearer token for mutating calls: from the file named by
// --token-file if given, else from $ROAMCTL_TOKEN; "" if neither is set.
func (c *cli) token(tokenFile string) (string, error) {
	if tokenFile == "" {
		return strings.TrimSpace(c.getenv("ROAMCTL_TOKEN")), nil
	}
	f, err := os.Open(tokenFile)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	if len(b) > maxTokenBytes {
		return "", fmt.Errorf("--token-file %s: larger than %d bytes; want one token", tokenFile, maxTokenBytes)
	}
	tok := bytes.TrimSpace(b)
	if len(tok) == 0 {
		return "", fmt.Errorf("--token-file %s: the file is empty; want one token", tokenFile)
	}
	if bytes.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("--token-file %s: the file holds more than one word; want one token", tokenFile)
	}
	return string(tok), nil
}
