module l7px.dev/examples/go-hello

go 1.19

require l7px.dev/l7px v0.0.0

replace l7px.dev/l7px => ../../sdk/go
