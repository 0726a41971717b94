package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Interrupts (SIGINT, SIGTERM).
//
// A one-shot command (compile, setup, prove, bench...) spends its time in CPU-bound
// steps (settings search, lowering, gnark compile, setup and prove) that never look at
// a context. The first signal cancels the command's context, for the parts that do
// watch it (an npm install of solc, the demo's service), and gives the command
// interruptGrace to return; then, returned or not, onInterrupt's cleanups run,
// "zkml: interrupted" goes to stderr and the process exits with 128 + the signal's
// number (130 for SIGINT, 143 for SIGTERM). A second signal exits at once. A model
// directory is safe to stop at any point: each artifact is written through a
// temporary file and a rename, and only files the manifest lists (with their
// checksums) count, so an interrupted compile or setup leaves a directory whose
// missing circuit or keys later commands report (or make: setup compiles a missing
// circuit).
//
// A long-running command (serve, worker, migrate, internal-job: annotated with
// gracefulSignals()) shuts down gracefully instead: the first signal cancels its
// context and restores the default handling, so a second signal during the shutdown
// kills the process.

// interruptGrace is how long a one-shot command has to return after the first signal.
const interruptGrace = 500 * time.Millisecond

// signalsAnnotation marks a command that handles interrupts through its context.
const signalsAnnotation = "zkml.signals"

// gracefulSignals is the annotation of a command that shuts down gracefully on the
// first signal (its context is cancelled).
func gracefulSignals() map[string]string { return map[string]string{signalsAnnotation: "graceful"} }

var interrupts struct {
	mu       sync.Mutex
	graceful bool
	sig      os.Signal // the first signal that interrupted a one-shot command
	cleanups map[int]func()
	next     int
	exiting  bool
}

// setGraceful records whether the command about to run shuts down through its context.
func setGraceful(cmd *cobra.Command) {
	interrupts.mu.Lock()
	defer interrupts.mu.Unlock()
	interrupts.graceful = cmd.Annotations[signalsAnnotation] == "graceful"
}

// onInterrupt registers fn to run when an interrupt stops a one-shot command (to
// remove a temporary directory, say) and returns its removal, for when the command
// cleans up itself.
func onInterrupt(fn func()) (remove func()) {
	interrupts.mu.Lock()
	defer interrupts.mu.Unlock()
	if interrupts.cleanups == nil {
		interrupts.cleanups = map[int]func(){}
	}
	id := interrupts.next
	interrupts.next++
	interrupts.cleanups[id] = fn
	return func() {
		interrupts.mu.Lock()
		defer interrupts.mu.Unlock()
		delete(interrupts.cleanups, id)
	}
}

// handleInterrupts returns the root context of a command, cancelled by the first
// SIGINT or SIGTERM (see the comment above for what follows).
func handleInterrupts() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		interrupts.mu.Lock()
		graceful := interrupts.graceful
		if graceful {
			interrupts.mu.Unlock()
			// Back to the default handling: a second signal kills the process. (No
			// message: the service logs its shutdown, as JSON lines on stderr.)
			signal.Stop(sigs)
			cancel()
			return
		}
		interrupts.sig = sig
		interrupts.mu.Unlock()
		cancel()
		select {
		case <-sigs:
		case <-time.After(interruptGrace):
		}
		exitInterrupted()
	}()
	return ctx
}

// interrupted reports whether a signal interrupted the one-shot command.
func interrupted() bool {
	interrupts.mu.Lock()
	defer interrupts.mu.Unlock()
	return interrupts.sig != nil
}

// exitInterrupted runs the cleanups, says so and exits with 128 + the signal's
// number. The first call exits; a concurrent one waits for that.
func exitInterrupted() {
	interrupts.mu.Lock()
	if interrupts.exiting {
		interrupts.mu.Unlock()
		select {}
	}
	interrupts.exiting = true
	// Held until the exit: no cleanup is added or removed meanwhile.
	for _, fn := range interrupts.cleanups {
		fn()
	}
	if term.IsTerminal(int(os.Stderr.Fd())) {
		// Past a spinner's line (and the terminal's ^C).
		fmt.Fprintln(os.Stderr)
	}
	fmt.Fprintln(os.Stderr, "zkml: interrupted")
	n := 2 // os.Interrupt where it is not a syscall.Signal
	if s, ok := interrupts.sig.(syscall.Signal); ok {
		n = int(s)
	}
	os.Exit(128 + n)
}
