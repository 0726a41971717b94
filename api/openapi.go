package api

import _ "embed"

// openAPIDoc is served at /v1/openapi.json; TestOpenAPICoversRoutes keeps it and the
// router in step.
//
//go:embed openapi.json
var openAPIDoc []byte
