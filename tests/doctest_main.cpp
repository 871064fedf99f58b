// doctest_main.cpp: the entry point shared by the doctest binaries.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
