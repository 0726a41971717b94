// Command ensure-solc makes sure the pinned solc-js (contracts/package.json) is installed
// where zkml looks for it, installing it with npm into the user cache directory when
// missing (as `zkml verify --evm` does on first use), and prints that directory on stdout
// (messages go to stderr). scripts/ensure-solc.sh runs it:
//
//	export ZKML_SOLC="$(scripts/ensure-solc.sh)"
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/zkml/zkml/internal/evm"
)

func main() {
	c, err := evm.Ensure(context.Background(), "", os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ensure-solc:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "ensure-solc: solc %s ready\n", c.Version())
	fmt.Println(c.Dir())
}
