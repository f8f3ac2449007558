#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript (npm ci runs the build through "prepare").
import '../dist/src/cli/main.js';
