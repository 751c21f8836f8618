module l7px.dev/examples/go-bare-service

go 1.19
