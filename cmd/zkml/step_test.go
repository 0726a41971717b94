package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestStepProgressLines checks that a step on a writer that is not a terminal prints
// periodic lines naming the step while it runs, then its duration, and nothing after.
func TestStepProgressLines(t *testing.T) {
	defer func(d time.Duration) { progressEvery = d }(progressEvery)
	progressEvery = time.Millisecond
	var w syncBuffer
	_, err := step(&w, "setup groth16", func() (int, error) {
		// Run until two progress lines are out (the ticker's pace is not asserted).
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(w.String(), "running") < 2 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(w.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("want at least two progress lines and the duration, got:\n%s", w.String())
	}
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "setup groth16") || !strings.Contains(l, "running, ") {
			t.Errorf("progress line %q does not name the step and say it is running", l)
		}
	}
	if last := lines[len(lines)-1]; strings.Contains(last, "running") || !strings.HasSuffix(last, "s") {
		t.Errorf("last line %q is not the step's duration", last)
	}
	time.Sleep(5 * time.Millisecond)
	if got := strings.Split(strings.TrimSpace(w.String()), "\n"); len(got) != len(lines) {
		t.Errorf("lines written after the step ended:\n%s", w.String())
	}

	// A failing step prints no duration.
	var fw syncBuffer
	if _, err := step(&fw, "prove", func() (int, error) { return 0, errors.New("boom") }); err == nil {
		t.Fatal("step lost f's error")
	}
	for _, l := range strings.Split(strings.TrimSpace(fw.String()), "\n") {
		if l != "" && !strings.Contains(l, "running") {
			t.Errorf("a failed step printed %q", l)
		}
	}
}
