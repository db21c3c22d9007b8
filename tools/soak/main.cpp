#include "tools/soak/soak.h"

int main(int argc, char** argv) {
  return ringwatch::soak::main(argc, argv);
}
