// First touch of fresh anonymous memory vs a second pass over it: what a freshly allocated
// buffer of the archive reader's window size costs on this VM (4 KiB pages, transparent huge
// pages with MADV_HUGEPAGE, or the pages populated first with MADV_POPULATE_WRITE, Linux 5.14).
// Build and run: cc -O2 -o /tmp/first-touch lab/probes/first-touch.c && /tmp/first-touch MIB MODE
// MIB: buffer size in MiB (72 = one window at 22x the bench's rate); MODE: 0 = plain, 1 = madvise
// huge pages, 2 = madvise populate-write before the first write (timed with it).
// Prints five rounds of: fresh mapping written once, then the same mapping written again.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  size_t n=(size_t)atol(argv[1])<<20; int mode=atoi(argv[2]);
  for(int r=0;r<5;r++){
    char*p=mmap(0,n,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);
    if(mode==1) madvise(p,n,MADV_HUGEPAGE);
    double t=now();
    if(mode==2 && madvise(p,n,MADV_POPULATE_WRITE)) perror("madvise");
    memset(p,1,n); double a=now()-t;
    t=now(); memset(p,2,n); double b=now()-t;
    printf("fresh %.1f ms (%.2f GB/s)  reuse %.1f ms\n",a*1e3,n/a/1e9,b*1e3);
    munmap(p,n);
  }
}
