#include "tools/cli/cli.h"

int main(int argc, char** argv) {
  return ringwatch::cli::run(argc, argv);
}
