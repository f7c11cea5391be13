/* s3.c — S3 storage driver. Not implemented yet (see the S3 issue). */
#include <regfs/config.h>
#include <regfs/storage.h>

#include <errno.h>

int regfs_storage_s3_new(const struct regfs_s3_config *cfg, struct regfs_storage **out,
			 struct regfs_err *err)
{
	(void)cfg;
	*out = NULL;
	return regfs_errf(err, -ENOTSUP, "the s3 driver is not available yet: use storage.filesystem");
}
