// flags.h: the checks every program's numeric flags go through. Each message names what was
// wrong and the allowed range, so "--seed -1" says "must be an integer in 0..18446744073709551615,
// got -1" instead of wrapping around, and "--latent abc" says "not a number", not "not in range".
// CLI11 prefixes the flag's name ("--seed: ...").
#pragma once
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "engine/device.h"

namespace gv::app {

// The whole string as a decimal integer (an optional sign, digits; no spaces, no "1e3", no "0x").
std::optional<int64_t> parse_int64(const std::string& s);
std::optional<uint64_t> parse_uint64(const std::string& s);  // no sign at all
// The whole string as a finite or infinite floating-point number (strtod's syntax).
std::optional<double> parse_double(const std::string& s);

// Integers in lo..hi (both included): "not a number: 'abc'", "not an integer: '1.5'", "must be an
// integer in 1..4096, got 0" (or ">= lo" when hi is the largest int64).
CLI::Validator int_range(int64_t lo, int64_t hi = std::numeric_limits<int64_t>::max());
inline CLI::Validator at_least(int64_t lo) { return int_range(lo); }
// Unsigned 64-bit settings (seeds): 0..2^64-1, with a sign refused.
CLI::Validator uint64_any();
// Finite numbers above lo (inclusive: >= lo), optionally at most hi.
CLI::Validator number_above(double lo, bool inclusive);
CLI::Validator number_range(double lo, double hi);

// --device: "cpu", "cuda" (= cuda:0) or "cuda:N". The validator checks the form ("must be cpu,
// cuda or cuda:N, got 'gpu'"); parse_device gives the Device, and checked_device also checks that
// this build and this machine have it, else a DeviceError that says what was found.
CLI::Validator device_spec();
Device parse_device(const std::string& spec);
Device checked_device(const std::string& spec);
// Adds --device (default "cpu") bound to spec.
CLI::Option* add_device_flag(CLI::App& app, std::string& spec);

}  // namespace gv::app
