module github.com/elmascale/elmascale

go 1.26.0
