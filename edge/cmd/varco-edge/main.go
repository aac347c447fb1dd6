// Command varco-edge is the access-control daemon on a turnstile controller.
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
		fmt.Printf("varco-edge %s\n", protocol.Version)
		return
	}
	fmt.Fprintf(os.Stderr, "usage: varco-edge --version\n")
	os.Exit(2)
}
