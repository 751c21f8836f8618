module l7px.dev/l7px

go 1.19
