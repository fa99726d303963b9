//go:build race

package main

// raceBuild: the lift proof builds with -race too, to share this build's
// compiled dependencies.
const raceBuild = true
