// Throwaway driver (not committed): sets up a sharded model's segments as the
// concurrent `zkml compile --shard` writes their circuits.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/prover/shard"
)

func main() {
	dir := os.Args[1]
	m, err := prover.Open(dir)
	if err != nil {
		panic(err)
	}
	var pl *shard.Plan
	for {
		if pl, err = shard.Load(m); err == nil {
			break
		}
		time.Sleep(10 * time.Second)
	}
	d := shard.Dir{M: m, Sys: circuits.Groth16}
	start := time.Now()
	for i := range pl.Segments {
		for {
			if _, err := m.ReadArtifact(fmt.Sprintf("segment%d.stats.groth16.json", i)); err == nil {
				break
			}
			time.Sleep(5 * time.Second)
		}
		t := time.Now()
		if err := d.Setup(i); err != nil {
			panic(err)
		}
		j := d.SharedKeys(i + 1)[i]
		fmt.Printf("setup segment %d: %.1fs (keys of segment %d)\n", i, time.Since(t).Seconds(), j)
	}
	if err := d.RecordTrust(pl); err != nil {
		panic(err)
	}
	own := 0
	for i, j := range d.SharedKeys(len(pl.Segments)) {
		if i == j {
			own++
		}
	}
	fmt.Printf("%d segments, %d distinct circuits set up, %.1fs\n", len(pl.Segments), own, time.Since(start).Seconds())
}
