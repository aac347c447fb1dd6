// Command varco-sim is simulated OSDP readers and turnstile.
//
// Until its own issue lands it only reports its version.
package main

import (
	"fmt"
	"os"

	"varco.dev/protocol"
)

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "version") {
		fmt.Printf("varco-sim %s\n", protocol.Version)
		return
	}
	fmt.Fprintf(os.Stderr, "usage: varco-sim --version\n")
	os.Exit(2)
}
