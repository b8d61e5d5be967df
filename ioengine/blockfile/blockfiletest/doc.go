// Package blockfiletest makes the files and block devices that tests of
// usrpt's I/O engines run against: sparse files in a test's temporary
// directory or on tmpfs (/dev/shm), and loop devices over them.
//
// Every helper skips the test, rather than failing it, when the machine
// cannot provide what it asks for (no /dev/shm, not root, no loop driver),
// and undoes what it set up when the test ends.
package blockfiletest
