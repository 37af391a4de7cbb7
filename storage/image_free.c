/* Releasing an image: every array and string belongs to the image, the
 * deleted-file contents of fds[].data included. */
#include <stdlib.h>
#include <string.h>

#include "core/image.h"

void ck_image_free(struct ck_image *img)
{
	if (!img)
		return;
	for (size_t i = 0; i < img->nregions; i++)
		free(img->regions[i].path);
	for (size_t i = 0; i < img->nfds; i++) {
		free(img->fds[i].path);
		free(img->fds[i].data);
	}
	free(img->regions);
	free(img->runs);
	free(img->threads);
	free(img->fds);
	free(img->timers);
	free(img->proc.cwd);
	free(img->proc.host);
	img->regions = NULL;
	img->runs = NULL;
	img->threads = NULL;
	img->fds = NULL;
	img->timers = NULL;
	img->proc.cwd = NULL;
	img->proc.host = NULL;
	img->nregions = img->nruns = img->nthreads = img->nfds = img->ntimers = 0;
	img->memory_bytes = img->filedata_bytes = 0;
}
