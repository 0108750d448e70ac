// A shared object with no ECM descriptor: not a plugin at all.
extern "C" __attribute__((visibility("default"))) int not_an_ecm_plugin() {
  return 42;
}
