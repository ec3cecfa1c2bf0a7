module throttlebench/services

go 1.19
