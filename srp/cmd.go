package srp

// DescFmt is one nibble of SRP_CMD's BUF_FMT: the format of the DATA-OUT
// (high nibble) or DATA-IN (low nibble) buffer descriptor (SRP r16a table
// 16; SRP-2 adds IMMEDIATE, for DATA-OUT only).
type DescFmt uint8

// Descriptor formats; 4 to 15 are reserved.
const (
	FmtNone      DescFmt = 0 // no data transfer
	FmtDirect    DescFmt = 1 // one direct descriptor
	FmtIndirect  DescFmt = 2 // indirect header and partial list
	FmtImmediate DescFmt = 3 // SRP-2: 4-byte header; data at the negotiated offset
)

func (f DescFmt) String() string {
	switch f {
	case FmtNone:
		return "none"
	case FmtDirect:
		return "direct"
	case FmtIndirect:
		return "indirect"
	case FmtImmediate:
		return "immediate"
	}
	return "reserved"
}

// TaskAttr is TASK ATTRIBUTE of SRP_CMD (SRP r16a table 17; values as in
// Linux ib_srpt.h enum srp_task_attributes).
type TaskAttr uint8

// Task attributes. ib_srpt and SCST treat other values as ORDERED.
const (
	AttrSimple      TaskAttr = 0
	AttrHeadOfQueue TaskAttr = 1
	AttrOrdered     TaskAttr = 2
	AttrACA         TaskAttr = 4
)

// Desc is a memory descriptor (srp.h struct srp_direct_buf): a region of
// initiator memory the target reads or writes with RDMA.
type Desc struct {
	VA  uint64 // virtual address
	Key uint32 // remote key (R_Key)
	Len uint32 // length in bytes
}

// DescAt decodes the descriptor at b[0:16]; b must be that long.
func DescAt(b []byte) Desc {
	_ = b[DirectDescLen-1]
	return Desc{VA: be.Uint64(b), Key: be.Uint32(b[8:]), Len: be.Uint32(b[12:])}
}

// Put writes d into b[0:16]; b must be that long.
func (d Desc) Put(b []byte) {
	_ = b[DirectDescLen-1]
	be.PutUint64(b, d.VA)
	be.PutUint32(b[8:], d.Key)
	be.PutUint32(b[12:], d.Len)
}

// DataBuf is one direction's data buffer of an SRP_CMD. What the fields
// hold depends on Format:
//
//	FmtNone      nothing
//	FmtDirect    Desc: the descriptor
//	FmtIndirect  Desc: the table descriptor (the whole table in initiator
//	             memory); Total: TOTAL LENGTH; List: the partial list in the
//	             IU, Count descriptors (read them with ListDesc)
//	FmtImmediate Total: the length; List: the data, inside the IU
type DataBuf struct {
	Format DescFmt
	Count  uint8 // the DATA-OUT/DATA-IN DESCRIPTOR COUNT field
	Desc   Desc
	Total  uint32
	List   []byte
}

// Len is the number of bytes the buffer describes.
func (d *DataBuf) Len() uint32 {
	switch d.Format {
	case FmtDirect:
		return d.Desc.Len
	case FmtIndirect, FmtImmediate:
		return d.Total
	}
	return 0
}

// NumDesc is the number of descriptors the target can use without reading
// the table from initiator memory: 1 for direct, the partial list's for
// indirect, 0 otherwise.
func (d *DataBuf) NumDesc() int {
	switch d.Format {
	case FmtDirect:
		return 1
	case FmtIndirect:
		return len(d.List) / DirectDescLen
	}
	return 0
}

// ListDesc returns descriptor i of the usable list (0 ≤ i < NumDesc).
func (d *DataBuf) ListDesc(i int) Desc {
	if d.Format == FmtDirect {
		return d.Desc
	}
	return DescAt(d.List[i*DirectDescLen:])
}

// Partial reports an indirect buffer whose table has more descriptors than
// the IU carries: the rest must be read from initiator memory, which
// neither Linux target does (they fail such commands).
func (d *DataBuf) Partial() bool {
	return d.Format == FmtIndirect && int(d.Desc.Len/DirectDescLen) > len(d.List)/DirectDescLen
}

// Cmd is SRP_CMD decoded (srp.h struct srp_cmd). CDB and the DataBufs'
// List alias the IU.
type Cmd struct {
	Tag     Tag
	SolNot  uint8  // SOLNOT bits (byte 1)
	LUN     uint64 // the 8-byte LUN field, big-endian, as scsi.Task.LUN
	Attr    TaskAttr
	CDB     []byte // 16 bytes plus ADDITIONAL CDB LENGTH
	DataOut DataBuf
	DataIn  DataBuf
}

// ParseCmd decodes and checks SRP_CMD b. immDataOffset is the offset of
// immediate data agreed at login (SRP-2), 0 when immediate data was not
// agreed. Every length, offset and count the initiator supplied is checked
// before use:
//
//   - the IU holds the 48-byte header and the additional CDB
//     (ADDITIONAL CDB LENGTH bits 7:2; bits 1:0 are reserved and ignored);
//   - each nibble of BUF_FMT is a known format; IMMEDIATE only for DATA-OUT
//     and only when agreed;
//   - the descriptors (DATA-OUT first, then DATA-IN) lie inside the IU;
//   - DESCRIPTOR COUNT is 0 for none; 0 or 1 for direct and immediate (the
//     Linux initiator leaves it 0); for indirect, the number of partial-list
//     descriptors in the IU, at most the table's (table length / 16, which
//     must divide evenly);
//   - indirect lengths: the partial list's sum (in 64 bits) is at most
//     TOTAL LENGTH, and equal to it when the whole table is in the IU;
//   - immediate data start at immDataOffset, not before the end of the
//     descriptors, and end inside the IU.
//
// It never panics and allocates nothing. Bytes after the descriptors (or
// the immediate data) are ignored.
func ParseCmd(b []byte, immDataOffset int) (Cmd, error) {
	var c Cmd
	if err := check(b, OpCmd, CmdLen); err != nil {
		return c, err
	}
	c.SolNot = b[1]
	outFmt, inFmt := DescFmt(b[5]>>4), DescFmt(b[5]&0x0F)
	c.DataOut.Format, c.DataOut.Count = outFmt, b[6]
	c.DataIn.Format, c.DataIn.Count = inFmt, b[7]
	c.Tag = tagAt(b, 8)
	c.LUN = be.Uint64(b[20:])
	c.Attr = TaskAttr(b[29])
	off := CmdLen + int(b[31]&^3)
	if off > len(b) {
		return c, ErrAddCDBLen
	}
	c.CDB = b[32:off]
	switch {
	case outFmt > FmtImmediate, outFmt == FmtImmediate && immDataOffset <= 0:
		return c, ErrDataOutFmt
	case inFmt > FmtIndirect:
		return c, ErrDataInFmt
	}
	var err error
	if off, err = parseBuf(b, off, &c.DataOut); err != nil {
		return c, err
	}
	if off, err = parseBuf(b, off, &c.DataIn); err != nil {
		return c, err
	}
	if outFmt == FmtImmediate {
		if immDataOffset < off {
			return c, ErrImmOffset
		}
		// Both operands are below 2^32 and ints are 64-bit on every
		// platform usrpt runs on; the uint64 sum cannot wrap either way.
		if uint64(immDataOffset)+uint64(c.DataOut.Total) > uint64(len(b)) {
			return c, ErrImmPastIU
		}
		c.DataOut.List = b[immDataOffset : immDataOffset+int(c.DataOut.Total)]
	}
	return c, nil
}

// parseBuf decodes the descriptor of d.Format at b[off:] and returns the
// offset after it.
func parseBuf(b []byte, off int, d *DataBuf) (int, error) {
	switch d.Format {
	case FmtNone:
		if d.Count != 0 {
			return off, ErrDescCount
		}
		return off, nil
	case FmtDirect:
		if d.Count > 1 {
			return off, ErrDescCount
		}
		if len(b)-off < DirectDescLen {
			return off, ErrDescPastIU
		}
		d.Desc = DescAt(b[off:])
		return off + DirectDescLen, nil
	case FmtImmediate:
		if d.Count > 1 {
			return off, ErrDescCount
		}
		if len(b)-off < ImmHdrLen {
			return off, ErrDescPastIU
		}
		d.Total = be.Uint32(b[off:])
		return off + ImmHdrLen, nil
	}
	// Indirect. off ≤ 48+252 and Count ≤ 255, so no int arithmetic here
	// can overflow.
	if len(b)-off < IndirectHdrLen {
		return off, ErrDescPastIU
	}
	d.Desc = DescAt(b[off:])
	d.Total = be.Uint32(b[off+16:])
	off += IndirectHdrLen
	n := int(d.Count)
	if len(b)-off < n*DirectDescLen {
		return off, ErrDescPastIU
	}
	d.List = b[off : off+n*DirectDescLen]
	if d.Desc.Len%DirectDescLen != 0 {
		return off, ErrIndirectTableLen
	}
	table := d.Desc.Len / DirectDescLen
	if uint32(n) > table {
		return off, ErrPartialList
	}
	var sum uint64 // at most 255 × (2^32−1): no overflow in 64 bits
	for i := 0; i < n; i++ {
		sum += uint64(be.Uint32(d.List[i*DirectDescLen+12:]))
	}
	if sum > uint64(d.Total) || uint32(n) == table && sum != uint64(d.Total) {
		return off, ErrIndirectTotal
	}
	return off + n*DirectDescLen, nil
}

// Put writes c into b and returns the IU's length, or 0 when b is too
// short or c cannot be encoded (a CDB longer than 16+252 bytes, a partial
// list not a multiple of 16 or over 255 descriptors, immediate data with
// immDataOffset before the end of the descriptors). A CDB shorter than 16
// is padded with zeros and a longer one to a multiple of 4. Count is
// written as given for none, direct and immediate; for indirect it is the
// partial list's length. Immediate data (DataOut.List) are written at
// immDataOffset and DataOut.Total is written as their length.
func (c *Cmd) Put(b []byte, immDataOffset int) int {
	add := 0
	if len(c.CDB) > 16 {
		add = (len(c.CDB) - 16 + 3) &^ 3
	}
	if add > MaxAddCDBLen {
		return 0
	}
	off := CmdLen + add
	end := off
	for _, d := range [2]*DataBuf{&c.DataOut, &c.DataIn} {
		switch d.Format {
		case FmtDirect:
			end += DirectDescLen
		case FmtImmediate:
			end += ImmHdrLen
		case FmtIndirect:
			if len(d.List)%DirectDescLen != 0 || len(d.List) > 255*DirectDescLen {
				return 0
			}
			end += IndirectHdrLen + len(d.List)
		}
	}
	if c.DataIn.Format == FmtImmediate || c.DataOut.Format > FmtImmediate || c.DataIn.Format > FmtImmediate {
		return 0
	}
	if c.DataOut.Format == FmtImmediate {
		if immDataOffset < end || len(c.DataOut.List) > int(^uint32(0)) {
			return 0
		}
		end = immDataOffset + len(c.DataOut.List)
	}
	if len(b) < end {
		return 0
	}
	b = b[:end]
	clear(b[:off])
	b[0] = byte(OpCmd)
	b[1] = c.SolNot
	b[5] = byte(c.DataOut.Format)<<4 | byte(c.DataIn.Format)
	copy(b[8:], c.Tag[:])
	be.PutUint64(b[20:], c.LUN)
	b[29] = byte(c.Attr)
	b[31] = byte(add)
	copy(b[32:off], c.CDB)
	for i, d := range [2]*DataBuf{&c.DataOut, &c.DataIn} {
		cnt := d.Count
		switch d.Format {
		case FmtDirect:
			d.Desc.Put(b[off:])
			off += DirectDescLen
		case FmtImmediate:
			be.PutUint32(b[off:], uint32(len(d.List)))
			off += ImmHdrLen
			clear(b[off:immDataOffset])
			copy(b[immDataOffset:], d.List)
		case FmtIndirect:
			d.Desc.Put(b[off:])
			be.PutUint32(b[off+16:], d.Total)
			off += IndirectHdrLen
			off += copy(b[off:], d.List)
			cnt = uint8(len(d.List) / DirectDescLen)
		}
		b[6+i] = cnt
	}
	return end
}
