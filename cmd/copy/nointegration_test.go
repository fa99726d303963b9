//go:build !integration

package main

const integrationBuild = false
