/* storage.c — picks the storage driver the configuration names. */
#include <regfs/config.h>
#include <regfs/storage.h>

#include <errno.h>

int regfs_storage_open(const struct regfs_config *cfg, struct regfs_storage **out,
		       struct regfs_err *err)
{
	switch (cfg->storage_type) {
	case REGFS_STORAGE_FILESYSTEM:
		return regfs_storage_fs_new(cfg->fs_rootdirectory, out, err);
	case REGFS_STORAGE_S3:
		return regfs_storage_s3_new(&cfg->s3, out, err);
	}
	return regfs_errf(err, -EINVAL, "unknown storage driver");
}
