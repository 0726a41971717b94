package service_test

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/zkml/zkml/api/apitest"
	"github.com/zkml/zkml/internal/service"
)

// Example shows how `zkml serve` runs the service: configuration from ZKML_*
// variables, the proving engine from the pipeline, and a context cancelled on SIGINT
// or SIGTERM for a graceful shutdown. `zkml worker` calls service.Work and `zkml
// migrate` service.Migrate the same way. (Compiled by go test, not run.)
func Example() {
	cfg, err := service.FromEnv()
	if err != nil {
		log.Fatal(err)
	}
	cfg.Engine = &apitest.Engine{} // the real pipeline's api.Engine in cmd/zkml
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := service.Serve(ctx, cfg); err != nil {
		log.Fatal(err)
	}
}
